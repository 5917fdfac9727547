"""Fair-play filter logic (bot/fairplay.py): what is hidden before the lock, what passes after it."""
from __future__ import annotations

import json
import re

import pytest

from bot.fairplay import FairPlay, FairPlayError, PanoAliases, ScrubState, scrub, scrub_body


def _classic_game(n_rounds: int) -> dict:
    """GeoGuessr-like classic game JSON holding ``n_rounds`` rounds (the last one is being played)."""
    return {"token": "abc", "round": n_rounds, "bounds": {"min": {"lat": -60, "lng": -180}, "max": {"lat": 80, "lng": 180}},
            "rounds": [{"lat": 10.0 + i, "lng": 20.0 + i, "panoId": "4142434445464748" + f"{i:02x}" * 2,
                        "heading": 90, "countryCode": "fr", "streakLocationCode": None} for i in range(n_rounds)],
            "player": {"guesses": [{"lat": 1.0, "lng": 2.0, "roundScoreInPoints": 10} for _ in range(n_rounds - 1)]}}


def test_current_round_is_hidden_until_locked_and_next_round_stays_hidden():
    st = ScrubState()
    clean, n = scrub(_classic_game(1), st)
    r = clean["rounds"][0]
    assert "lat" not in r and "lng" not in r and "countryCode" not in r and "panoId" not in r
    assert r["heading"] == 90 and n >= 4
    assert clean["bounds"]["min"]["lat"] == -60  # the guess map needs the map bounds
    st.cleared_through, st.current_locked = 1, True
    clean, _ = scrub(_classic_game(2), st)  # the answer to our guess already holds round 2
    assert clean["rounds"][0]["lat"] == 10.0 and clean["rounds"][0]["countryCode"] == "fr"
    assert "lat" not in clean["rounds"][1] and "panoId" not in clean["rounds"][1]
    assert clean["player"]["guesses"][0]["lat"] == 1.0  # outside rounds[]: visible once the round is locked
    st.current_locked = False  # armed for round 2: own/opponent guesses are hidden again
    clean, _ = scrub(_classic_game(2), st)
    assert "lat" not in clean["player"]["guesses"][0] and clean["rounds"][0]["lat"] == 10.0


def test_duel_rounds_use_their_round_number():
    data = {"rounds": [{"roundNumber": 2, "panorama": {"lat": 5, "lng": 6, "panoId": "x" * 22, "countryCode": "se"}},
                       {"roundNumber": 1, "panorama": {"lat": 7, "lng": 8, "countryCode": "no"}}],
            "teams": [{"health": 6000, "players": [{"guesses": [{"roundNumber": 1, "lat": 7.1, "lng": 8.1}]}]}]}
    clean, _ = scrub(data, ScrubState(cleared_through=1, current_locked=False))
    assert clean["rounds"][1]["panorama"]["lat"] == 7 and "lat" not in clean["rounds"][0]["panorama"]
    assert "lat" not in clean["teams"][0]["players"][0]["guesses"][0]
    assert clean["teams"][0]["health"] == 6000


def test_pano_ids_become_aliases_and_requests_are_rewritten():
    aliases = PanoAliases()
    real_hex = "4142434445464748494a4b4c4d4e4f50"  # hex of "ABCDEFGHIJKLMNOP", as GeoGuessr sends it
    clean, _ = scrub({"rounds": [{"panoId": real_hex}]}, ScrubState(), aliases)
    alias_hex = clean["rounds"][0]["panoId"]
    assert alias_hex != real_hex and len(alias_hex) == len(real_hex)
    alias_plain = bytes.fromhex(alias_hex).decode()
    assert aliases.rewrite(f"https://tiles.example/tile?panoid={alias_plain}&x=1") == \
        "https://tiles.example/tile?panoid=ABCDEFGHIJKLMNOP&x=1"
    assert aliases.rewrite(f"/api/x/{alias_hex}") == f"/api/x/{real_hex}"
    assert aliases.alias(real_hex) == alias_hex  # stable within a game
    assert not aliases.matches("https://tiles.example/tile?panoid=ABCDEFGHIJKLMNOP")


def test_next_data_in_html_is_scrubbed_and_other_bodies_pass():
    snap = {"props": {"pageProps": {"gameSnapshot": _classic_game(1)}}}
    html = ('<html><body><script id="__NEXT_DATA__" type="application/json">' + json.dumps(snap) +
            "</script><p>lat 10.0</p></body></html>").encode()
    out, n = scrub_body(html, "text/html; charset=utf-8", ScrubState())
    assert n >= 4
    data = json.loads(re.search(rb'__NEXT_DATA__" type="application/json">(.*?)</script>', out, re.DOTALL).group(1))
    assert "lat" not in data["props"]["pageProps"]["gameSnapshot"]["rounds"][0]
    assert b"<p>lat 10.0</p>" in out
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    assert scrub_body(png, "image/png", ScrubState()) == (png, 0)
    assert scrub_body(b"{not json", "application/json", ScrubState()) == (b"{not json", 0)


def test_guard_refuses_reads_before_the_lock():
    fp = FairPlay(re.compile("/api/"))
    with pytest.raises(FairPlayError, match="round 3"):
        fp.guard.require_locked(3, "the result")
    fp.lock(3)
    fp.guard.require_locked(3, "the result")
    assert fp.state.cleared_through == 3 and fp.state.current_locked
    fp.arm()
    assert not fp.state.current_locked
    assert "lat" not in fp.scrub_json({"lat": 1})  # the adapter's own API reads are filtered too
