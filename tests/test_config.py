from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from model.config import ConfigError, config_to_dict, dump_toml, load_config


@dataclass(frozen=True)
class Runtime:
    device: str = "auto"
    batch_size: int = 32


@dataclass(frozen=True)
class Stage:
    lr: float = 1e-3
    name: str = "x"
    passes: tuple[tuple[int, float], ...] = ((8, 0.05),)
    runtime: Runtime = field(default_factory=Runtime)


def test_defaults_then_file_then_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('lr = 2\nname = "file"\n[runtime]\nbatch_size = 8\n')
    cfg = load_config(Stage, p, ["runtime.device=cpu", "name=cli"])
    assert cfg == Stage(lr=2.0, name="cli", runtime=Runtime(device="cpu", batch_size=8))
    assert isinstance(cfg.lr, float)


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("lrr = 1\n")
    with pytest.raises(ConfigError, match="unknown key.*lrr"):
        load_config(Stage, p)
    with pytest.raises(ConfigError, match="runtime.*unknown key.*gpu"):
        load_config(Stage, None, ["runtime.gpu=1"])


def test_wrong_type_and_bad_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('lr = "fast"\n')
    with pytest.raises(ConfigError, match="lr.*expected float"):
        load_config(Stage, p)
    p.write_text("lr = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Stage, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Stage, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Stage, None, ["lr"])


def test_nested_tuples_and_round_trip(tmp_path):
    cfg = load_config(Stage, None, ["passes=[[8, 0.05], [10, 0.025]]"])
    assert cfg.passes == ((8, 0.05), (10, 0.025))
    p = tmp_path / "out.toml"
    p.write_text(dump_toml(config_to_dict(cfg)))
    assert load_config(Stage, p) == cfg


def test_runtime_device_names_follow_the_one_device_rule():
    from model.device import check_device_name
    from train.config import RuntimeConfig

    assert [RuntimeConfig(device=d).device for d in ("auto", "cpu", "cuda", "cuda:1", "mps")] == [
        "auto", "cpu", "cuda", "cuda:1", "mps"]
    for bad in ("gpu", "cuda:", "cuda:x", "tpu"):
        with pytest.raises(ValueError, match="unknown device"):
            check_device_name(bad)
