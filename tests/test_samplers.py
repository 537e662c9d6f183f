"""Sampler presets from files, settings validation, and the chains they build on the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

import ezchat as ez
from ezchat.settings.paths import user_dir

DOCUMENTED = [
    "GreedyDecoding",
    "DefaultSampling",
    "ClassicSampling",
    "SimpleSampling",
    "SemiSampling",
    "TikTokenSampling",
    "LowMinPSampling",
    "MinPSampling",
    "StrictMinPSampling",
    "ContrastiveSearch",
    "WarmContrastiveSearch",
    "RandomSampling",
    "LowTempSampling",
    "HighTempSampling",
]


def test_documented_presets_exist_with_their_values() -> None:
    names = ez.samplers.available()
    for name in DOCUMENTED:
        assert name in names
    greedy = ez.samplers.GreedyDecoding
    assert isinstance(greedy, ez.SamplerSettings) and greedy.temp == 0.0 and greedy.is_greedy
    assert ez.samplers.ClassicSampling.repeat_penalty == 1.1
    assert ez.samplers.load("mInPsAmPlInG").min_p == 0.1  # names are case-insensitive
    assert "GreedyDecoding" in dir(ez.samplers)


@pytest.mark.parametrize("name", sorted(set(ez.samplers.available())))
def test_every_shipped_preset_loads_and_generates(name: str, model: ez.Model) -> None:
    settings = ez.samplers.load(name).replace(max_len_tokens=4, seed=11)
    assert settings.name == "custom"
    result = model.complete("The sky is", sampler=settings)
    assert 1 <= result.n_generated <= 4
    assert ez.samplers.description(name)


def test_settings_validation_names_field_and_range() -> None:
    with pytest.raises(ValueError, match=r"temp must be between 0 and 10, got 11"):
        ez.SamplerSettings(temp=11.0).validate()
    with pytest.raises(ValueError, match="top_k must be int"):
        ez.samplers.GreedyDecoding.replace(top_k=1.5)
    assert ez.samplers.DefaultSampling.replace(temp=0.3).temp == 0.3


def test_nan_and_values_that_would_wrap_in_ctypes_are_refused() -> None:
    """NaN passed every range check, and an int past int32 wrapped silently in llama.cpp."""
    with pytest.raises(ValueError, match="temp must be a finite number, got nan"):
        ez.SamplerSettings(temp=float("nan")).validate()
    with pytest.raises(ValueError, match="top_k must be between 0 and 2147483647, got 10{23}"):
        ez.samplers.GreedyDecoding.replace(top_k=10**23)
    with pytest.raises(ValueError, match="seed must be between -1 and 4294967295, got 4294967296"):
        ez.samplers.GreedyDecoding.replace(seed=2**32)
    assert ez.samplers.parse_value("top_k", " 7 ") == 7
    with pytest.raises(ValueError, match="min_p must be a finite number, got inf"):
        ez.samplers.parse_value("min_p", "inf")

    folder = user_dir("samplers")
    folder.mkdir(parents=True)
    (folder / "Nan.toml").write_text('description = "broken"\ntop_p = 0.9\ntemp = nan\n')
    with pytest.raises(ez.UserFileError, match=r"Nan.toml:3: temp must be a finite number"):
        ez.samplers.load("Nan")
    (folder / "Huge.toml").write_text("top_k = 9223372036854775807\n")
    with pytest.raises(ez.UserFileError, match=r"Huge.toml:1: top_k must be between 0 and"):
        ez.samplers.load("Huge")


def test_fresh_copies_do_not_share_state() -> None:
    first = ez.samplers.load("DRYSampling")
    first.dry_sequence_breakers.append("zzz")
    assert "zzz" not in ez.samplers.load("DRYSampling").dry_sequence_breakers


def test_user_preset_adds_and_overrides() -> None:
    folder = user_dir("samplers")
    folder.mkdir(parents=True)
    (folder / "MyPreset.toml").write_text('description = "mine"\ntemp = 0.5\ntop_k = 7\n')
    (folder / "GreedyDecoding.toml").write_text("temp = 0.0\ntop_k = 1\n")
    assert "MyPreset" in ez.samplers.available()
    mine = ez.samplers.load("MyPreset")
    assert (mine.temp, mine.top_k, mine.name) == (0.5, 7, "MyPreset")
    assert ez.samplers.load("GreedyDecoding").top_k == 1
    assert ez.samplers.sources()["GreedyDecoding"].source == "user"


def _user_preset(text: str) -> Path:
    folder = user_dir("samplers")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Broken.toml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_line_key_and_valid_keys() -> None:
    path = _user_preset('description = "x"\ntemperature = 0.5\n')
    with pytest.raises(ez.UserFileError) as error:
        ez.samplers.load("Broken")
    message = str(error.value)
    assert f"{path}:2" in message and "temperature" in message and "temp" in message
    assert "\n" not in message


def test_out_of_range_and_wrong_type_are_named() -> None:
    path = _user_preset("min_p = 2.0\n")
    with pytest.raises(ez.UserFileError, match=rf"{path}:1: min_p must be between 0 and 1"):
        ez.samplers.load("Broken")
    _user_preset('top_k = "ten"\n')
    with pytest.raises(ez.UserFileError, match="top_k"):
        ez.samplers.load("Broken")


def test_malformed_toml_names_the_file() -> None:
    path = _user_preset("temp = = 1\n")
    with pytest.raises(ez.UserFileError, match=str(path)):
        ez.samplers.load("Broken")


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(ez.UnknownNameError) as error:
        ez.samplers.load("NoSuchPreset")
    assert "GreedyDecoding" in str(error.value)
    with pytest.raises(AttributeError):
        ez.samplers.NoSuchPreset  # noqa: B018


@pytest.mark.parametrize(
    "penalty",
    [
        {"presence_penalty": 2.0},
        {"repeat_penalty": 5.0},
        {"frequency_penalty": 2.0},
        {"dry_multiplier": 2.0, "dry_allowed_length": 1},
    ],
)
def test_penalties_see_the_prompt_and_break_repetition(model: ez.Model, penalty: dict) -> None:
    prompt = "List: apple, apple, apple, apple,"
    plain = model.generate(prompt, sampler=ez.SamplerSettings(temp=0, max_len_tokens=12))
    assert plain.count("apple") >= 5  # greedy alone keeps repeating
    penalised = model.generate(
        prompt, sampler=ez.SamplerSettings(temp=0, max_len_tokens=12, **penalty)
    )
    assert penalised.count("apple") < plain.count("apple")


def test_seeded_sampling_is_reproducible(model: ez.Model) -> None:
    settings = ez.SamplerSettings(temp=1.0, seed=42, max_len_tokens=16)
    assert model.generate("Once upon a time", sampler=settings) == model.generate(
        "Once upon a time", sampler=settings
    )
