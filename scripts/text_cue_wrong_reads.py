"""Wrong reads on purpose: how much each kind of bad text moves the played guess of the text cue.

    python scripts/text_cue_wrong_reads.py --run checkpoints/demo --data data/worlds/text-test512 --split test

On every round the real OCR reads (cached by ``scripts/tune_text_cue.py`` / ``pigeon eval --text-cue``) get one
extra, wrong line, then the round is played again:

* ``ambiguous``: "San Jose" (31 GeoNames places in several countries);
* ``misspelt``: the true town's name with two letters swapped (a read that is right but damaged);
* ``random``: a random string of letters (garbage);
* ``far_place``: the name of a real, unambiguous place on another continent ("Reykjavik" or "Wellington").

Prints the mean score and how often the guess snapped, per case, next to the clean reads and the cue off.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def swap2(name: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if len(letters) < 4:
        return name
    i = rng.choice(letters[1:-1])
    chars = list(name)
    chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args(argv)

    from model.formats.dataset import load_dataset
    from model.paths import cache_dir
    from model.text.cue import TextCueConfig, load_text_cue
    from model.text.engines import TextRead
    from train.embed import dataset_fingerprint
    from train.evaluate import countries_at, geolocation_metrics
    from train.textcue import read_locations, text_cue_metrics

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tune_text_cue import image_outputs

    ds = load_dataset(args.data)
    locs = ds.split(args.split)
    ids, views = [loc.id for loc in locs], ds.views
    reads, _ = read_locations(ds, ids, views, TextCueConfig(), cache_dir(), dataset_fingerprint(ds))
    pred, probs, refined = image_outputs(Path(args.run), ds, ids, views)
    true = np.array([[loc.lat, loc.lon] for loc in locs])
    true_country = np.array([loc.aux.get("country", "") for loc in locs])
    cue = load_text_cue(TextCueConfig())
    rng = random.Random(7)

    def extra(loc) -> dict[str, str]:
        far = "Wellington" if loc.lon > -30 and loc.lon < 100 else "Reykjavik"
        junk = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(6, 12)))
        return {"ambiguous": "San Jose", "misspelt": swap2(loc.aux.get("town", "") or "Springfield", rng),
                "random": junk.capitalize(), "far_place": far}

    extras = {loc.id: extra(loc) for loc in locs}
    rows = {}
    for case in ("clean", "ambiguous", "misspelt", "random", "far_place"):
        case_reads = {i: list(reads.get(i, [])) + ([] if case == "clean" else
                                                    [TextRead(extras[i][case], 0.95, (), 0)]) for i in ids}
        m, _, _ = text_cue_metrics(cue, case_reads, ids, probs, true, true_country, pred.centroids_deg,
                                   pred.cell_country, refined, geolocation_metrics, countries_at)
        rows[case] = {"score_on": round(m["on"]["geoguessr_score"], 1), "score_off": round(m["off"]["geoguessr_score"], 1),
                      "snapped_rounds": m["confident_matches"], "precision": m["match_precision"],
                      "country_on": m["on"]["country_accuracy"]}
        print(case, json.dumps(rows[case]))
    if args.out:
        Path(args.out).write_text(json.dumps({"rounds": len(ids), "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
