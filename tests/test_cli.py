"""The command line teaches: the command list with purposes and a first example, each
command's help with its default config and the override syntax, both override spellings,
one default config, only the flags a command reads, and the old flag spellings still parse."""

import importlib.metadata
import re

import pytest

from adarl_jax.cli import commands as cli
from adarl_jax.experiments import workers
from adarl_jax.cli.parser import parse
from adarl_jax.config import load_config, to_json

COMMANDS = ("reproduce", "train", "report", "analyze", "tune", "seeds", "contrast", "predict", "export", "prepare",
            "features")
CONFIG_COMMANDS = ("reproduce", "train", "prepare", "features")
MAIN_EXAMPLE = "adarl-jax reproduce --data ../shared/data/emodb --workdir runs/quick"


@pytest.fixture
def run(monkeypatch, capsys):
    """cli.main in this process: (exit code, stdout, stderr), help unwrapped."""
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("ADARL_JAX_COMPILATION_CACHE", "off")

    def call(*argv):
        rc = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return call


def _listing(text: str) -> dict:
    """{command: purpose} from the help's command list."""
    rows = re.findall(r"^    (\w+) {2,}(\S.*)$", text, flags=re.M)
    return dict(rows)


def test_help_lists_every_command_with_its_purpose_and_the_main_example(run):
    rc, out, _ = run("--help")
    assert rc == 0
    listing = _listing(out)
    assert tuple(listing) == COMMANDS
    assert all(len(purpose.split()) >= 4 for purpose in listing.values()), listing
    assert MAIN_EXAMPLE in out
    assert "--config.section.field=value" in out and "--config.section.field value" in out


def test_no_command_prints_the_same_listing_to_stderr_and_exits_2(run):
    _, help_text, _ = run("--help")
    rc, out, err = run()
    assert rc == 2 and out == ""
    assert err == help_text
    rc, _, err = run("-v")
    assert rc == 2 and _listing(err) == _listing(help_text)


def test_version_is_the_installed_package_version(run):
    rc, out, _ = run("--version")
    assert rc == 0
    assert out.strip() == f"adarl-jax {importlib.metadata.version('adarl-jax')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_a_description_and_an_example(run, command):
    rc, out, _ = run(command, "--help")
    assert rc == 0
    usage, description = out.split("\n\n")[:2]
    assert usage.startswith(f"usage: adarl-jax {command}")
    assert _listing(run("--help")[1])[command].lower() in description.lower()
    example = out.split("example:\n", 1)[1].splitlines()[0].strip()
    assert example.startswith(f"adarl-jax {command} ")
    if command in CONFIG_COMMANDS + ("tune",):
        assert "--config.section.field=value or --config.section.field value" in out
        default = "default: quick" if command != "tune" else "default: the grid's base config"
        assert default in out
    else:
        assert "--config" not in out


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_one_default_config_for_every_command(command):
    argv = {"features": ["features", "a.wav", "--out", "x.npy"]}.get(command,
                                                                   [command, "--workdir", "w"])
    assert to_json(cli.config_from_argv(argv)) == to_json(load_config("quick"))


def test_space_and_equals_overrides_give_the_same_config():
    base = ["train", "--config", "smoke", "--workdir", "w"]
    spaced = cli.config_from_argv(base + ["--config.optim.lr", "0.25", "--folds", "0",
                                          "--config.model.variant", "backbone"])
    equals = cli.config_from_argv(base + ["--config.optim.lr=0.25", "--folds", "0",
                                          "--config.model.variant=backbone"])
    assert to_json(spaced) == to_json(equals)
    assert spaced.optim.lr == 0.25 and spaced.model.variant == "backbone"
    assert to_json(spaced) != to_json(cli.config_from_argv(base))


def test_overrides_reach_workers_in_one_spelling_that_parses_to_the_same_config():
    argv = ["reproduce", "--config", "smoke", "--workdir", "w", "--config.optim.lr", "0.25",
            "--workers", "2"]
    args = parse(argv)
    assert args.argv == ["reproduce", "--config", "smoke", "--workdir", "w",
                         "--config.optim.lr=0.25", "--workers", "2"]
    worker = workers.worker_argv(args.argv, [1, 3], "w/.locks/claims_1")
    assert parse(worker).folds == "1,3" and parse(worker).workers == 1
    assert parse(worker).claims == "w/.locks/claims_1"
    assert to_json(cli.config_from_argv(worker)) == to_json(cli.config_from_argv(argv))


@pytest.mark.parametrize("form", [["--config.optim.no_such_field", "3"],
                                  ["--config.optim.no_such_field=3"]])
def test_unknown_override_field_is_named(run, tmp_path, form):
    rc, _, err = run("prepare", "--config", "smoke", "--workdir", tmp_path / "w", *form)
    assert rc == 2
    assert "no config field 'optim.no_such_field'" in err
    assert not (tmp_path / "w").exists()


def test_override_without_a_value_is_a_usage_error(run):
    rc, _, err = run("train", "--workdir", "w", "--config.optim.lr")
    assert rc == 2 and "--config.optim.lr=VALUE or --config.optim.lr VALUE" in err
    rc, _, err = run("train", "--workdir", "w", "--config.optim.lr", "--folds", "0")
    assert rc == 2 and "got the flag --folds" in err


@pytest.mark.parametrize("argv,flag", [
    (["features", "--data", "x", "a.wav", "--out", "x.npy"], "--data"),
    (["features", "--corpus", "emodb", "a.wav", "--out", "x.npy"], "--corpus"),
    (["report", "--workdir", "w", "--folds", "0"], "--folds"),
    (["predict", "--checkpoint", "w", "a.wav", "--out", "p.csv", "--workdir", "w"], "--workdir"),
    (["report", "--workdir", "w", "--config.optim.lr=1"], "--config.optim.lr"),
])
def test_a_flag_the_command_does_not_read_is_rejected(run, argv, flag):
    rc, _, err = run(*argv)
    assert rc == 2
    assert f"adarl-jax {argv[0]}: error:" in err and flag in err


def test_old_underscore_flags_still_parse_and_are_hidden(run):
    dashed = parse(["train", "--workdir", "w", "--coordinator", "h:1", "--num-processes", "2",
                    "--process-id", "1", "--init-timeout", "5"])
    old = parse(["train", "--workdir", "w", "--coordinator", "h:1", "--num_processes", "2",
                 "--process_id", "1", "--init_timeout", "5"])
    assert (old.num_processes, old.process_id, old.init_timeout) == (2, 1, 5)
    assert (dashed.num_processes, dashed.process_id, dashed.init_timeout) == (2, 1, 5)
    assert parse(["train", "--workdir", "w"]).init_timeout == 300
    _, out, _ = run("train", "--help")
    assert "--num-processes" in out and "--num_processes" not in out


def test_report_takes_the_workdir_as_a_flag_or_positionally(run):
    assert parse(["report", "--workdir", "runs/a"]).workdir == "runs/a"
    assert parse(["report", "runs/a"]).workdir == "runs/a"
    assert parse(["report", "runs/a", "--workdir", "runs/a"]).workdir == "runs/a"
    rc, _, err = run("report")
    assert rc == 2 and "--workdir" in err
    rc, _, err = run("report", "runs/a", "--workdir", "runs/b")
    assert rc == 2 and "give the workdir once" in err


def test_verbose_is_accepted_before_and_after_the_command():
    for argv in (["-v", "report", "--workdir", "w"], ["report", "--workdir", "w", "-v"],
                 ["report", "w", "--verbose"]):
        assert parse(argv).verbose is True
    assert parse(["report", "--workdir", "w"]).verbose is False


def test_an_unknown_override_names_the_nearest_field(run, tmp_path):
    rc, _, err = run("prepare", "--config", "smoke", "--workdir", tmp_path / "w",
                     "--config.optim.lrr=0.1")
    assert rc == 2 and "no config field 'optim.lrr'; did you mean 'optim.lr'?" in err
    rc, _, err = run("prepare", "--config", "smoke", "--workdir", tmp_path / "w",
                     "--config.frontnd.n_bins=3")
    assert rc == 2 and "no config section 'frontnd'; did you mean 'frontend'?" in err
    rc, _, err = run("prepare", "--config", "smoke", "--workdir", tmp_path / "w",
                     "--config.optim.zzzz=1")
    assert rc == 2 and "did you mean" not in err  # nothing near: no guess


def test_the_exit_code_help_says_what_a_missing_input_gives(run, tmp_path):
    _, out, _ = run("--help")
    codes = " ".join(out.split("Exit codes:")[1].split())
    assert "2 bad input (arguments, config, corpus, a missing input file;" in codes
    assert "4 a file cannot be written or read for want of permission or space" in codes
    rc, _, err = run("predict", "--model", tmp_path / "no-model", tmp_path / "x.wav")
    assert rc == 2 and "no-model" in err
    rc, _, err = run("features", "--config", "smoke", tmp_path / "missing.wav", "--out",
                     tmp_path / "x.npy")
    assert rc == 2 and "missing.wav" in err
