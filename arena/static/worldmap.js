// Offline world maps for the arena: Leaflet (Web Mercator) with a vector country layer from world-atlas
// countries-50m via topojson-client; no tile server. Rings crossing the antimeridian are unwrapped and
// Antarctica (id "010") dropped, which removes the horizontal artefacts Web Mercator otherwise shows.
"use strict";

const WorldMap = (() => {
  let worldPromise = null;
  const COLORS = ["#f5b400", "#e8457a", "#38bdf8", "#22c55e"];

  function loadWorld() {
    if (!worldPromise) {
      worldPromise = fetch("/static/vendor/countries-50m.json").then((r) => {
        if (!r.ok) throw new Error(`world outline: HTTP ${r.status}`);
        return r.json();
      }).then((topo) => {
        const fc = topojson.feature(topo, topo.objects.countries);
        fc.features = fc.features.filter((f) => f.id !== "010");
        const unwrap = (ring) => {
          for (let i = 1; i < ring.length; i++) {
            const d = ring[i][0] - ring[i - 1][0];
            if (d > 180) ring[i][0] -= 360; else if (d < -180) ring[i][0] += 360;
          }
        };
        for (const f of fc.features) {
          const g = f.geometry;
          if (!g) continue;
          (g.type === "Polygon" ? [g.coordinates] : g.coordinates).forEach((p) => p.forEach(unwrap));
        }
        return fc;
      });
    }
    return worldPromise;
  }

  // A Leaflet map with the country layer; arrow keys stay free for rotating the panorama (keyboard: false).
  function create(el, opts = {}) {
    const map = L.map(el, {
      zoomControl: opts.zoomControl !== false, attributionControl: false, keyboard: false,
      minZoom: 1, maxZoom: 18, worldCopyJump: false, zoomSnap: 0.25,
      maxBounds: [[-89, -260], [89, 260]], maxBoundsViscosity: 0.8,
      renderer: L.canvas({padding: 0.5}),
    });
    map.setView(opts.center || [20, 0], opts.zoom === undefined ? 1 : opts.zoom);
    // countries get their own pane below the overlay pane: the outline arrives asynchronously and would
    // otherwise be painted over lines and heat dots drawn before it
    map.createPane("countries").style.zIndex = 250;
    loadWorld().then((fc) => {
      L.geoJSON(fc, {interactive: false, pane: "countries", renderer: L.canvas({pane: "countries", padding: 0.5}),
        style: {color: "#8a8f98", weight: 0.6, fillColor: "#f2efe9", fillOpacity: 1}}).addTo(map);
    }).catch((e) => console.error(e));
    if (opts.labels) addDetailLayers(map);
    return map;
  }

  // Admin-1 borders and town labels (most populous first) appear from zoom 4 on, fetched per view from the
  // arena (offline GeoNames places and admin-1 polygons).
  function addDetailLayers(map) {
    map.createPane("borders").style.zIndex = 260;
    map.createPane("labels").style.zIndex = 640;
    map.getPane("labels").style.pointerEvents = "none";
    const borders = L.layerGroup().addTo(map), labels = L.layerGroup().addTo(map);
    const renderer = L.canvas({pane: "borders", padding: 0.3});
    let seq = 0, timer = null;
    async function refresh() {
      const z = map.getZoom(), id = ++seq;
      if (z < 4) { borders.clearLayers(); labels.clearLayers(); return; }
      const b = map.getBounds();
      const q = `s=${Math.max(-90, b.getSouth()).toFixed(3)}&w=${Math.max(-540, b.getWest()).toFixed(3)}` +
        `&n=${Math.min(90, b.getNorth()).toFixed(3)}&e=${Math.min(540, b.getEast()).toFixed(3)}&z=${z}`;
      try {
        const [pl, ad] = await Promise.all([fetch(`/api/geo/places?${q}`), fetch(`/api/geo/admin1?${q}`)]);
        if (!pl.ok || !ad.ok || id !== seq) return;
        const places = (await pl.json()).places, lines = (await ad.json()).lines;
        if (id !== seq) return;
        borders.clearLayers(); labels.clearLayers();
        L.polyline(lines, {pane: "borders", renderer, color: "#a78bfa", weight: 1, opacity: 0.8, dashArray: "3 3",
          interactive: false}).addTo(borders);
        for (const [lat, lon, name, pop] of places) {
          const big = pop >= 1e6 ? " big" : pop >= 2e5 ? " mid" : "";
          L.marker([lat, lon], {pane: "labels", interactive: false, keyboard: false, icon: L.divIcon({
            className: `town-label${big}`, iconSize: null, html: `<span>${name.replace(/[<&>"]/g, "")}</span>`})}).addTo(labels);
        }
      } catch (e) { console.error(e); }
    }
    map.on("moveend zoomend", () => { clearTimeout(timer); timer = setTimeout(refresh, 150); });
  }

  function pinIcon(color, label) {
    return L.divIcon({className: "pin-icon", iconSize: [28, 38], iconAnchor: [14, 36],
      html: `<div class="pin" style="--pin:${color}"><span>${label || ""}</span></div>`});
  }

  function flagIcon() {
    return L.divIcon({className: "flag-icon", iconSize: [30, 30], iconAnchor: [15, 15],
      html: '<div class="flag" data-qa="correct-location"></div>'});
  }

  // Draw guess(es) -> truth lines; returns the bounds that frame them. Lines stay inside one world copy
  // (longitudes -180..180) because the country layer is drawn only there.
  function drawResult(layer, truth, guesses) {
    const pts = [[truth.lat, truth.lon]];
    L.marker([truth.lat, truth.lon], {icon: flagIcon(), zIndexOffset: 1000}).addTo(layer);
    for (const g of guesses) {
      if (g.lat === null || g.lat === undefined) continue;
      const color = COLORS[g.seat % COLORS.length];
      const lon = g.lon;
      L.polyline([[truth.lat, truth.lon], [g.lat, lon]], {color: "#1f2937", weight: 3, dashArray: "6 7",
        opacity: 0.85}).addTo(layer);
      L.marker([g.lat, lon], {icon: pinIcon(color, g.label || "")}).addTo(layer);
      pts.push([g.lat, lon]);
    }
    return L.latLngBounds(pts);
  }

  function fit(map, bounds, maxZoom = 6) {
    map.invalidateSize();
    if (bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(bounds.getCenter(), 4);
    else map.fitBounds(bounds, {padding: [50, 50], maxZoom});
  }

  return {loadWorld, create, pinIcon, flagIcon, drawResult, fit, COLORS};
})();
