// Shared helpers of the arena pages: player identity (localStorage), JSON API calls, formatting.
"use strict";

const Arena = (() => {
  const KEY = "pigeon.arena.player";

  function player() {
    try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }

  function setPlayer(p) {
    if (p) localStorage.setItem(KEY, JSON.stringify(p)); else localStorage.removeItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = {...(extraHeaders || {})};
    const p = player();
    if (p && p.token) headers["X-Player-Token"] = p.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data && data.detail ? data.detail : res.statusText);
    return data;
  }

  // A stored token the server no longer knows (new database) is dropped, so the page asks for a name again.
  async function validPlayer() {
    const p = player();
    if (!p) return null;
    try { await api("GET", "/api/me"); return p; } catch (e) {
      if (e.status === 401) { setPlayer(null); return null; }
      throw e;
    }
  }

  async function createPlayer(name, kind = "human") {
    const p = await api("POST", "/api/players", {name, kind});
    setPlayer(p);
    return p;
  }

  const nf = new Intl.NumberFormat("en-US");
  const fmtInt = (n) => nf.format(Math.round(n));
  function fmtKm(km) {
    if (km === null || km === undefined) return "–";
    if (km < 1) return `${fmtInt(km * 1000)} m`;
    if (km < 10) return `${km.toFixed(1)} km`;
    return `${fmtInt(km)} km`;
  }
  function fmtClock(s) {
    s = Math.max(0, Math.ceil(s));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  const $ = (sel, root = document) => root.querySelector(sel);
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function toast(msg) {
    const t = $("#toast");
    if (!t) return;
    t.textContent = msg;
    t.classList.add("show");
    clearTimeout(toast._h);
    toast._h = setTimeout(() => t.classList.remove("show"), 3500);
  }

  return {player, setPlayer, api, validPlayer, createPlayer, fmtInt, fmtKm, fmtClock, $, el, toast, ApiError};
})();
