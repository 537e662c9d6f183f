"""A chat template is code from a file: its rendering is bounded in time and size, and one that
runs past the bound is refused in one line instead of hanging ezchat at 100% CPU."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from cli_support import run_ezchat

from ezchat.chat import formats, jinja_render
from ezchat.errors import TemplateLimitError
from ezchat.settings import paths

ROOT = Path(__file__).resolve().parent.parent
# 99999 x 99999 empty iterations: hours of pure bytecode that calls nothing.
NESTED_RANGES = (
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    "{{ messages[0]['content'] }}"
)


@pytest.fixture
def short_timeout():
    jinja_render.set_render_timeout(0.5)
    yield 0.5
    jinja_render.set_render_timeout(jinja_render.DEFAULT_RENDER_SECONDS)


def write_format(name: str, template: str) -> Path:
    folder = paths.config_dir() / "formats"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f"template = '''{template}'''\n", encoding="utf-8")
    return path


def test_nested_range_loops_are_refused_at_the_limit(short_timeout):
    with pytest.raises(TemplateLimitError) as refused:
        formats.from_jinja(NESTED_RANGES, name="loops", source="loops.toml")
    message = str(refused.value)
    assert "\n" not in message
    for fragment in ("'loops'", "loops.toml", "0.5 s", "--template-timeout", "template_timeout"):
        assert fragment in message


def test_rendering_goes_on_after_a_refusal(short_timeout):
    with pytest.raises(TemplateLimitError):
        formats.from_jinja(NESTED_RANGES, name="loops")
    chatml = formats.load("chatml")
    chat = [{"role": "user", "content": "Hello"}]
    first = chatml.render(chat)
    # A stopped render must leave no timer behind that could interrupt later work: once
    # every timer thread has ended, none can fire into a later render.
    for timer in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
        timer.join()
    assert chatml.render(chat) == first
    assert "Hello" in first


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 10000000000 }}",  # one C call: a timer cannot stop it, so '*' is checked
        "{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}",  # 9.9M characters of output
        "{{ 9 ** 99999999 }}",
    ],
    ids=["string-times", "output-size", "power"],
)
def test_huge_output_is_refused(template):
    with pytest.raises(TemplateLimitError) as refused:
        formats.from_jinja(template, name="huge")
    assert "'huge'" in str(refused.value)


def ezchat(*args: str) -> subprocess.CompletedProcess[str]:
    return run_ezchat(*args, timeout=60)


@pytest.mark.slow
def test_cli_refuses_a_runaway_format_in_one_line():
    path = write_format("loops", NESTED_RANGES)
    done = ezchat("generate", "-f", "loops", "--template-timeout", "0.4", "Hello")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ezchat: error: ")
    assert "'loops'" in lines[0] and str(path) in lines[0] and "0.4 s" in lines[0]
    assert "Traceback" not in done.stderr


def test_config_sets_the_template_timeout():
    write_format("loops", NESTED_RANGES)
    config = paths.config_dir() / "config.toml"
    config.write_text("template_timeout = 0.3\n", encoding="utf-8")
    done = ezchat("generate", "-f", "loops", "Hello")
    assert done.returncode == 2, done.stderr
    assert "0.3 s" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", '"fast"', "true"])
def test_a_bad_template_timeout_in_config_is_named(value):
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"template_timeout = {value}\n", encoding="utf-8")
    done = ezchat("generate", "-f", "chatml", "Hello")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "template_timeout" in lines[0], done.stderr


async def test_the_app_refuses_a_runaway_template_and_quits_on_q(tmp_path, short_timeout):
    from tui_support import SIZE, make_app, wait_until

    from ezchat.tui.loading import LoadingScreen

    write_format("loops", NESTED_RANGES)
    app = make_app(tmp_path / "chats.db")
    app.options = replace(app.options, format="loops")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "failed", False), "the refusal")
        assert isinstance(app.screen, LoadingScreen)
        status = str(app.screen.query_one("#loading-status").render())
        assert "'loops'" in status and "0.5 s" in status and "--template-timeout" in status
        await pilot.press("q")
    assert not app.is_running
