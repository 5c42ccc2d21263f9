"""The ``contract`` command line, run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import contract


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "contract", *args],
                          capture_output=True, text=True, timeout=120)


def test_plan_report_json_plot_and_dot(tmp_path):
    png, dot = tmp_path / "p.png", tmp_path / "p.dot"
    r = _run("plan", "ij,jk,kl->il", "--shapes", "8x16", "16x32", "32x4", "--optimize", "dp",
             "--plot", str(png), "--dot", str(dot))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("spec        ij,jk,kl->il")
    assert "planned 5.12 k" in r.stdout and "jk,kl->jl" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert dot.read_text().startswith("digraph plan {")
    r = _run("plan", "ij,jk,kl->il", "--shapes", "8x16", "16x32", "32x4", "--dtype", "bfloat16",
             "--json")
    assert r.returncode == 0, r.stderr
    p = contract.Plan.from_json(r.stdout)
    assert p == contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4), dtype="bfloat16")
    assert json.loads(r.stdout)["compute_dtype"] == "float32"


def test_compare_table():
    r = _run("compare", "ab,bc,cd->ad", "--shapes", "4x8", "8x8", "8x2",
             "--optimizers", "greedy", "auto-hq")
    assert r.returncode == 0, r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith("| ") and "optimizer" not in l]
    assert [row.split("|")[1].strip() for row in rows] == ["greedy", "auto-hq"]


@pytest.mark.parametrize("args,message", [
    (["plan", "ij,jk->ik", "--shapes", "2x3", "4x5"], "size"),
    (["plan", "ij,j$->i", "--shapes", "2x3", "3x4"], "invalid label"),
    (["plan", "ij,jk->ik", "--shapes", "2xq", "3x4"], "bad shape"),
    (["plan", "ij,jk->ik", "--shapes", "2x3", "3x4", "--optimize", "nope"], "unknown optimize"),
    (["plan", "ij,jk->ik", "--shapes", "2x3", "3x4", "--dtype", "strings"], "dtype"),
    (["plan", "ij,jk->ik"], "--shapes"),
    (["frobnicate"], "invalid choice"),
    (["compare", "ij,jk->ik", "--shapes", "2x3"], "operand"),
])
def test_bad_input_is_one_line_and_status_2(args, message, capsys):
    from contract.cli import main

    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1
    assert lines[0].startswith("contract: error:") and message in lines[0]


def test_bad_input_in_a_subprocess():
    for args in (["plan", "ij,jk->ik", "--shapes", "2x3", "4x5"], ["plan"]):
        r = _run(*args)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("contract: error:")


def test_help_has_examples_and_console_script(capsys):
    from contract.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0 and "examples:" in out and "contract compare" in out
    assert main(["plan", "i,i->", "--shapes", "5", "5"]) == 0
    assert "planned 10" in capsys.readouterr().out
    # The README's install puts the console script beside the interpreter.
    script = shutil.which("contract", path=os.path.dirname(sys.executable))
    assert script is not None, "console script not installed next to " + sys.executable
    r = subprocess.run([script, "plan", "ij->ji", "--shapes", "2x3"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "transpose" in r.stdout


def test_output_cut_short_by_the_reader_is_not_an_error():
    # A report long enough to overflow the pipe buffer, read one line, pipe closed.
    spec = ",".join(f"{a}{b}" for a, b in zip("abcdefghijklmnopqrst", "bcdefghijklmnopqrstu"))
    cmd = [sys.executable, "-m", "contract", "plan", spec + "->au", "--shapes", *["4x4"] * 20,
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Broken pipe" not in err and "Traceback" not in err


def test_bad_plot_path_fails_before_printing_anything(tmp_path):
    for bad, why in ((str(tmp_path / "missing" / "p.png"), "not a writable directory"),
                     (str(tmp_path / "p.unknown"), "--plot takes one of")):
        r = _run("plan", "ij,jk->ik", "--shapes", "2x3", "3x4", "--plot", bad)
        assert r.returncode == 2 and r.stdout == "" and why in r.stderr


def test_memory_limit_slices_and_help_says_so(capsys):
    from contract.cli import main

    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "slice the plan when its peak (the bytes it holds beyond the inputs" in text
    shapes = ["--shapes", "64x64", "64x64", "64x64"]
    assert main(["plan", "ab,bc,cd->ad", *shapes, "--memory-limit", "24000"]) == 0
    assert "slicing" in capsys.readouterr().out
    # max_input: intermediates as large as the largest input pass, as in opt_einsum.
    assert main(["plan", "ab,bc,cd->ad", *shapes, "--memory-limit", "max_input"]) == 0
    assert "slicing" not in capsys.readouterr().out


def test_huge_flop_counts_print_in_scientific_notation(capsys):
    from contract.cli import main

    assert main(["plan", "abcdefgh,abcdefgh->", "--shapes", *["1000x1000x1000x1000x100x100x100x100"] * 2]) == 0
    out = capsys.readouterr().out
    flops = next(line for line in out.splitlines() if line.startswith("FLOPs"))
    assert "e+" in flops and " P" not in flops


def test_progress_draws_a_bar_on_stderr_and_keeps_the_plan():
    letters = "abcdefghijklmn"
    spec = ",".join(a + b for a, b in zip(letters, letters[1:] + letters[0])) + "->"
    shapes = ["2x2"] * len(letters)
    quiet = _run("plan", spec, "--shapes", *shapes, "--optimize", "auto-hq", "--json")
    loud = _run("plan", spec, "--shapes", *shapes, "--optimize", "auto-hq", "--json", "--progress")
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert "auto-hq chain 1/" in loud.stderr and "100%" in loud.stderr and not quiet.stderr
    assert contract.Plan.from_json(loud.stdout).path == contract.Plan.from_json(quiet.stdout).path
    assert "--progress" in _run("plan", "--help").stdout
