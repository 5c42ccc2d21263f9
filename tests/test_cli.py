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
    # The same plan, named the same way (only the time it took may differ).
    assert contract.Plan.from_json(loud.stdout) == contract.Plan.from_json(quiet.stdout)
    assert json.loads(loud.stdout)["optimize"] == "auto-hq"
    assert "--progress" in _run("plan", "--help").stdout


def _torus(side: int) -> tuple[list[list[str]], dict[str, int]]:
    """A side x side periodic lattice: one tensor per site, one bond (size 2)
    to each of its four neighbours, labels named by the bond (``h3_4``)."""
    inputs = [[f"h{r}_{c}", f"h{r}_{(c + 1) % side}", f"v{r}_{c}", f"v{(r + 1) % side}_{c}"]
              for r in range(side) for c in range(side)]
    return inputs, {l: 2 for t in inputs for l in t}


def test_network_file_in_both_forms_plans_a_100_tensor_network(tmp_path):
    import opt_einsum

    inputs, sizes = _torus(10)
    names = {l: opt_einsum.get_symbol(k) for k, l in enumerate(dict.fromkeys(sum(inputs, [])))}
    eq = ",".join("".join(names[l] for l in t) for t in inputs) + "->"
    shapes = [[sizes[l] for l in t] for t in inputs]
    assert len(inputs) == 100 and len(eq) > 400
    (tmp_path / "oe.json").write_text(json.dumps(
        {"inputs": inputs, "output": [], "size_dict": sizes}))
    (tmp_path / "eq.json").write_text(json.dumps({"eq": eq, "shapes": shapes}))
    want = contract.plan(eq, *shapes)
    # opt_einsum's form: multi-character labels become get_symbol's, in order.
    r = _run("plan", "--network", str(tmp_path / "oe.json"), "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert contract.Plan.from_json(r.stdout) == want
    assert json.loads(r.stdout)["spec"] == eq  # the JSON keeps the whole spec
    # The eq form: the text report shows the spec cut, and nothing else is that long.
    r = _run("plan", "--network", str(tmp_path / "eq.json"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    first, shapes_line = r.stdout.splitlines()[:2]
    assert first.startswith("spec        " + eq[:20]) and first.endswith("…-> (100 operands)")
    assert max(len(first), len(shapes_line)) < 120 and eq not in r.stdout
    assert f"planned {contract.planner.report.human(want.flops)}" in r.stdout
    r = _run("compare", "--network", str(tmp_path / "oe.json"), "--optimizers", "greedy")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("spec: " + eq[:20]) and "(100 operands)" in r.stdout
    assert eq not in r.stdout


def test_size_gives_each_label_its_size(capsys):
    from contract.cli import main

    assert main(["plan", "ij,jk,kl->il", "--size", "i=8,j=16", "k=32,l=4", "--json"]) == 0
    got = contract.Plan.from_json(capsys.readouterr().out)
    assert got == contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))
    assert main(["plan", "batch chan, chan out -> batch out", "--size", "batch=4,chan=8,out=2",
                 "--json"]) == 0
    assert contract.Plan.from_json(capsys.readouterr().out).shapes == ((4, 8), (8, 2))


def _error(args, capsys) -> str:
    """The one line a bad command prints (it exits with status 2, prints nothing on stdout)."""
    from contract.cli import main

    with pytest.raises(SystemExit) as exit:
        main(args)
    out, err = capsys.readouterr()
    assert exit.value.code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("contract: error: ")
    return err


@pytest.mark.parametrize("args,message", [
    (["ij,jk->ik", "--size", "i=2,j=3,k=4,i=5"], "--size gives label 'i' two sizes: 2 and 5"),
    (["ij,jk->ik", "--size", "i=2,j=3"], "no size for label 'k' (operand 1"),
    (["ij,jk->ik", "--size", "i=2,j=3,k=4,z=5"], "label 'z', which spec 'ij,jk->ik' does not"),
    (["ij,jk->ik", "--size", "i=2,j"], "bad --size 'j'"),
    (["...ij,jk->...ik", "--size", "i=2,j=3,k=4"], "'...'"),
    (["ij,jk->ik", "--size", "i=2", "--shapes", "2x3"], "not allowed with argument"),
    (["--size", "i=2"], "the spec is missing"),
])
def test_bad_sizes_are_one_line_errors(args, message, capsys):
    assert message in _error(["plan", *args], capsys)


@pytest.mark.parametrize("text,message", [
    ('{"eq": "ab,bc->ac",', "is not JSON: Expecting"),
    ('[[2, 3]]', "expected an object with keys eq and shapes, or inputs, output and size_dict"),
    ('{"eq": "ab,bc->ac", "shapes": [[2, 3], [3, 4]], "path": []}', "got eq, path, shapes"),
    ('{"eq": "ab,bc->ac", "shapes": [[2, 3], "3x4"]}', "shapes[1] must be a list, got '3x4'"),
    ('{"eq": "ab,bc->ac", "shapes": [[2, 3], [3, 4.5]]}', "shapes[1] holds 4.5"),
    ('{"eq": "ab,bc->ac", "shapes": [[2, 3], [4, 4]]}', "label 'b' has size 3 in operand 0"),
    ('{"inputs": [["a", "b"], ["b", "c"]], "output": ["a", "c"], '
     '"size_dict": {"a": 2, "b": 3, "c": 4, "b": 5}}', "key 'b' is given twice: 3 and 5"),
    ('{"inputs": [["a", "b"], ["b", "c"]], "output": ["a"], "size_dict": {"a": 2, "b": 3}}',
     "size_dict has no size for label 'c' of inputs[1]"),
    ('{"inputs": [["a", "b"], ["b", 7]], "output": [], "size_dict": {"a": 2, "b": 3}}',
     "inputs[1] holds 7: labels are non-empty strings"),
    ('{"inputs": [["a", "b"]], "output": ["z"], "size_dict": {"a": 2, "b": 3}}',
     "output label 'z' is in no input"),
    ('{"inputs": [["a", "b"]], "output": [], "size_dict": {"a": 2, "b": true}}',
     "size_dict['b'] holds True"),
])
def test_malformed_network_files_are_one_line_errors(text, message, tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(text)
    err = _error(["plan", "--network", str(path)], capsys)
    assert message in err and "Traceback" not in err
    assert "No such file" in _error(["plan", "--network", str(tmp_path / "none.json")], capsys)
    assert "holds the spec" in _error(["plan", "ab", "--network", str(path)], capsys)


def test_float64_plans_float64_without_a_jax_warning():
    r = _run("plan", "ij,jk->ik", "--shapes", "2x3", "3x4", "--dtype", "float64")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "(2, 3), (3, 4)   float64 -> float64" in r.stdout
    assert "x64           off here: JAX runs float64 as float32" in r.stdout
    r = _run("plan", "ij,jk->ik", "--shapes", "2x3", "3x4", "--dtype", "int64", "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert json.loads(r.stdout)["dtypes"] == ["int64", "int64"]


def test_progress_names_the_optimizer_as_without_it(capsys):
    from contract.cli import main

    letters = "abcdefghijklmnop"  # 16 operands: auto anneals (annealed-greedy)
    spec = ",".join(a + b for a, b in zip(letters, letters[1:] + letters[0])) + "->"
    args = ["plan", spec, "--shapes", *["8x8"] * len(letters)]
    for extra in ([], ["--memory-limit", "900"]):  # the second one sliced
        assert main([*args, *extra]) == 0
        quiet = capsys.readouterr().out
        assert main([*args, *extra, "--progress"]) == 0
        loud = capsys.readouterr().out
        assert "optimizer   auto (ran annealed-greedy" in quiet  # +reconfigure when sliced
        assert loud == quiet
