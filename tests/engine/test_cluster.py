"""Distributed runs on a real Dask LocalCluster (worker processes on 127.0.0.1): the same
figures, bit for bit, as in this process, for 1 and 2 workers and two block sizes; workers
with other software are refused; without Dask the message names the extra to install.

Why "identical" can be asserted with ``==`` rather than a tolerance: a block's paths are pure
functions of (seed, path index) computed by the same function (simulate_block) in both
runs, and every figure is reduced on the client from the per-path arrays in path order by
the same code. Any difference (a block computed twice with different draws, blocks put back
in the wrong order, a reduction in completion order) shows up as inequality of floats.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import openpyxl
import pytest

from cluster_fixtures import local_cluster
from workbook_helpers import SAMPLE, with_cells

distributed = pytest.importorskip("distributed")

from npl_xl.cli import main_cli  # noqa: E402
from npl_xl.engine import cluster as npl_cluster  # noqa: E402
from npl_xl.engine.simulate import simulate_deal  # noqa: E402
from npl_xl.errors import XlError  # noqa: E402
from npl_xl.macros import read_deal  # noqa: E402
from npl_xl.sheet.registry import load_all  # noqa: E402
from npl_xl.workbook.book import FileBook  # noqa: E402

N_SIMS = 1200   # 300 antithetic pairs of pairs; small, CI has two cores
SEED = 11
#: Block sizes on the cluster: 10 blocks with a short last one (128 does not divide 1200),
#: and 2 blocks; the in-process run uses its default 2048 (one block).
BLOCK_SIZES = (128, 1000)


@pytest.fixture(scope="module")
def shared_cluster():
    """One LocalCluster for the module (starting worker processes is the slow part)."""
    with local_cluster(2) as local:
        yield local


@pytest.fixture(scope="module", params=[2, 1], ids=["2-workers", "1-worker"])
def cluster(request, shared_cluster):
    """(address, worker count): two worker processes, then one (the other retired)."""
    n_workers = request.param
    address = shared_cluster.scheduler_address
    with distributed.Client(address, timeout=30) as client:
        if len(client.nthreads()) != n_workers:
            npl_cluster.close_clients()
            shared_cluster.scale(n_workers)
            deadline = time.monotonic() + 60
            while len(client.nthreads()) != n_workers and time.monotonic() < deadline:
                time.sleep(0.1)
        assert len(client.nthreads()) == n_workers
    yield address, n_workers


@pytest.fixture(scope="module")
def sample_tables():
    book = FileBook(SAMPLE)
    return {name: book.read_table(name).rows for name in ("Tape", "Tranches", "Settings")}


@pytest.fixture(scope="module")
def sample_deal():
    pool, tranches, settings, _ = read_deal(FileBook(SAMPLE))
    return pool, tranches, settings


@pytest.fixture(scope="module")
def in_process(sample_tables, sample_deal):
    """The in-process reference: NPL_TRANCHE_EL's table and simulate_deal's per-path arrays."""
    tranche_el = load_all()["NPL_TRANCHE_EL"]
    table = tranche_el(sample_tables["Tape"], sample_tables["Tranches"], sample_tables["Settings"],
                       N_SIMS, SEED, None, True)
    pool, tranches, settings = sample_deal
    return table, simulate_deal(pool, tranches, settings, n_sims=N_SIMS, seed=SEED)


def _with_keys(rows, **values):
    """The Settings rows with these keys' values set (the sample lists every key)."""
    rows = [list(r) for r in rows]
    for row in rows:
        if row[0] in values:
            row[1] = values.pop(row[0])
    assert not values, f"keys not in the table: {values}"
    return rows


def _same_cells(a, b) -> bool:
    """Two tables of cells equal cell by cell (floats exactly; NaN equals NaN)."""
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float):
            return x == y or (np.isnan(x) and np.isnan(y))
        return type(x) is type(y) and x == y
    return len(a) == len(b) and all(len(r) == len(s) and all(map(same, r, s))
                                    for r, s in zip(a, b))


def _tasks_by_worker(address, run):
    """Run ``run()`` while recording the scheduler's task stream; {worker: block tasks}."""
    with distributed.Client(address, timeout=30) as client:
        with distributed.get_task_stream(client=client) as stream:
            value = run()
    workers: dict[str, int] = {}
    for record in stream.data:
        if "block_task" in str(record["key"]):
            workers[record["worker"]] = workers.get(record["worker"], 0) + 1
    return value, workers


@pytest.mark.parametrize("block_paths", BLOCK_SIZES)
def test_tranche_el_on_a_cluster_is_the_in_process_table(cluster, block_paths, sample_tables,
                                                          in_process):
    address, n_workers = cluster
    tranche_el = load_all()["NPL_TRANCHE_EL"]
    tranche_el.clear_cache()  # the same cell on another worker count must compute again
    settings = _with_keys(sample_tables["Settings"], scheduler=address, block_paths=block_paths)
    table, workers = _tasks_by_worker(address, lambda: tranche_el(
        sample_tables["Tape"], sample_tables["Tranches"], settings, N_SIMS, SEED, None, True))
    assert not isinstance(table, XlError), table
    expected, _ = in_process
    assert _same_cells(table, expected)  # every float equal, not approximately
    # the blocks really ran on the cluster, one task per block, on every worker
    assert sum(workers.values()) == -(-N_SIMS // block_paths)
    if block_paths == 128:  # ten blocks: every worker gets some
        assert len(workers) == n_workers


@pytest.mark.parametrize("block_paths", BLOCK_SIZES)
def test_every_path_on_a_cluster_equals_the_in_process_path(cluster, block_paths, sample_deal,
                                                             in_process):
    address, _ = cluster
    pool, tranches, settings = sample_deal
    settings = settings.with_overrides(scheduler=address, block_paths=block_paths)
    result = simulate_deal(pool, tranches, settings, n_sims=N_SIMS, seed=SEED)
    _, expected = in_process
    assert np.array_equal(result.path_collections, expected.path_collections)
    for name in tranches.names:
        for per_path in ("tranche_loss", "tranche_default", "tranche_irr"):
            assert np.array_equal(getattr(result, per_path)[name], getattr(expected, per_path)[name])
        assert np.array_equal(result.tranche_wal[name], expected.tranche_wal[name], equal_nan=True)
    assert result.tranche_table.equals(expected.tranche_table)
    assert result.collection_curve.equals(expected.collection_curve)
    assert (result.pool_pv_mean, result.pool_pv_stderr) == (expected.pool_pv_mean,
                                                            expected.pool_pv_stderr)


def test_scenario_waterfalls_through_run_blocks_on_a_cluster(cluster, sample_deal):
    """The analyses' interface: one run_blocks call, collections per block then the
    waterfall of every scenario per path, on the workers; equal to the in-process call and
    to one simulate_deal per scenario (common random numbers)."""
    from npl_xl.engine.simulate import (ScenarioWaterfalls, mc_mean, run_blocks,
                                        simulate_collections)
    from npl_xl.inputs.deal import parse_tranches

    address, _ = cluster
    pool, tranches, settings = sample_deal
    settings = settings.with_overrides(n_sims=400, seed=SEED, block_paths=100)
    thinner = parse_tranches([["name", "kind", "balance", "coupon"]]
                             + [[t.name, t.kind_name, t.balance * (0.8 if t.kind == 0 else 1.0),
                                 t.coupon] for t in tranches])
    fees = settings.with_overrides(servicer_fee_rate=0.02)
    # pass 1: the issuance forecast (the whole run's expected collection curve) that
    # simulate_deal gives its waterfall; pass 2: every scenario's waterfall per block
    forecast = mc_mean(simulate_collections(pool, settings), settings.variance_reduction)[0]
    scenarios = ScenarioWaterfalls((("base", tranches, None), ("thin", thinner, None),
                                    ("fees", tranches, fees)), forecast)
    here = run_blocks(pool, settings, scenarios, keep_collections=False)
    there = run_blocks(pool, settings, scenarios, keep_collections=False, scheduler=address)
    assert sorted(here) == sorted(there) and "collections" not in there
    for key in here:
        assert np.array_equal(here[key], there[key], equal_nan=True), key
    for name, own, own_settings in scenarios.scenarios:
        alone = simulate_deal(pool, own, own_settings or settings)
        assert np.array_equal(there[f"{name}/loss"][:, 0], alone.tranche_loss[own.names[0]])
    assert not np.array_equal(there["base/loss"], there["fees/loss"])


def _results_values(path) -> dict[str, list[list]]:
    """Every Results table's cell values, except the run time stamp."""
    sheet = openpyxl.load_workbook(path)["Results"]
    values = {}
    for name, ref in sheet.tables.items():
        rows = [[c.value for c in row] for row in sheet[ref]]
        values[name] = [r for r in rows if r[0] != "run_at_utc"]
    return values


@pytest.fixture(scope="module")
def sample_with_block_setting(tmp_path_factory):
    """The sample deal asking for blocks of 256 paths (5 blocks) in its Settings table: the
    rows of seed and block_paths (blank, so absent from the sheet XML) swap keys, and seed
    0 becomes block_paths 256 (the seed comes from --seed)."""
    folder = tmp_path_factory.mktemp("blocks")
    sheet = openpyxl.load_workbook(SAMPLE)["Settings"]
    seed_row = next(c.row for c in sheet["A"] if c.value == "seed")
    blocks_row = next(c.row for c in sheet["A"] if c.value == "block_paths")
    return with_cells(SAMPLE, folder / "sample_blocks.xlsx",
                      {f"Settings!A{seed_row}": "block_paths", f"Settings!B{seed_row}": 256,
                       f"Settings!A{blocks_row}": "seed"})


@pytest.fixture(scope="module")
def run_in_process(tmp_path_factory, sample_with_block_setting):
    folder = tmp_path_factory.mktemp("run_in_process")
    outs = {}
    for label, source in (("auto", SAMPLE), ("256", sample_with_block_setting)):
        out = folder / f"{label}.xlsx"
        assert main_cli(["run", str(source), "-o", str(out), "--n-sims", str(N_SIMS), "--seed",
                         str(SEED), "--quiet", "--no-png"]) == 0
        outs[label] = _results_values(out)
    return outs


@pytest.mark.parametrize("label", ["auto", "256"])
def test_npl_xl_run_on_a_cluster_writes_the_in_process_results(cluster, label, tmp_path,
                                                               sample_with_block_setting,
                                                               run_in_process, capsys):
    address, _ = cluster
    source = SAMPLE if label == "auto" else sample_with_block_setting
    out = tmp_path / "cluster.xlsx"
    code = main_cli(["run", str(source), "-o", str(out), "--n-sims", str(N_SIMS), "--seed",
                     str(SEED), "--quiet", "--no-png", "--scheduler", address])
    assert code == 0, capsys.readouterr().err
    assert _results_values(out) == run_in_process[label]
    # the two block sizes themselves give one answer
    assert run_in_process["auto"]["ResultsTranches"] == run_in_process["256"]["ResultsTranches"]


def test_several_workbooks_in_one_command_on_a_cluster(cluster, tmp_path, run_in_process,
                                                       sample_with_block_setting, capsys):
    address, _ = cluster
    folder = tmp_path / "out"
    code = main_cli(["run", str(SAMPLE), str(sample_with_block_setting), "-o", str(folder),
                     "--n-sims", str(N_SIMS), "--seed", str(SEED), "--no-png",
                     "--scheduler", address])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert _results_values(folder / "sample_deal.run.xlsx") == run_in_process["auto"]
    assert _results_values(folder / "sample_blocks.run.xlsx") == run_in_process["256"]
    assert "(1/2)" in captured.out and "(2/2)" in captured.out
    assert captured.err.count("npl-xl: simulating") == 2  # progress per deal


def test_workers_with_other_software_are_refused(cluster, sample_deal):
    import npl_xl

    address, _ = cluster
    pool, tranches, settings = sample_deal
    with distributed.Client(address, timeout=30) as client:
        client.run(exec, "import npl_xl; npl_xl.__version__ = '0.0.0-other'")
        try:
            with pytest.raises(npl_cluster.ClusterError) as info:
                simulate_deal(pool, tranches, settings.with_overrides(scheduler=address), n_sims=8)
        finally:
            client.run(exec, f"import npl_xl; npl_xl.__version__ = {npl_xl.__version__!r}")
        message = str(info.value)
        import numba

        assert "npl-xl 0.0.0-other" in message and f"npl-xl {npl_xl.__version__}" in message
        assert f"numba {numba.__version__}" in message and "worker tcp://127.0.0.1:" in message
        # the task checks too (a worker that joined after the client's check): a client
        # that expects other code is refused by the task itself
        expected = {**npl_cluster.software(), "code": "0" * 16}
        future = client.submit(npl_cluster.block_task, pool, settings, 0, 4, None, True, expected)
        with pytest.raises(npl_cluster.ClusterError, match="code differ"):
            future.result(timeout=60)
    # and the cluster is usable again
    assert simulate_deal(pool, tranches, settings.with_overrides(scheduler=address),
                         n_sims=8).n_paths == 8


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path, capsys):
    from cluster_fixtures import free_port

    port = free_port()  # nothing listens there
    npl_cluster.CONNECT_TIMEOUT, saved = 3, npl_cluster.CONNECT_TIMEOUT
    try:
        code = main_cli(["run", str(SAMPLE), "-o", str(tmp_path / "x.xlsx"), "--quiet",
                         "--scheduler", f"tcp://127.0.0.1:{port}"])
    finally:
        npl_cluster.CONNECT_TIMEOUT = saved
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "x.xlsx").exists()
    assert err.count("\n") == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err


def test_a_bad_scheduler_argument_is_one_line(tmp_path, capsys):
    code = main_cli(["run", str(SAMPLE), "-o", str(tmp_path / "x.xlsx"), "--scheduler", "locl:2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--scheduler: must be blank" in err


BLOCK_DASK = """
import importlib.abc, sys
class NoDask(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoDask())
"""


def test_without_the_extra_a_scheduler_names_the_install(tmp_path):
    """A Python where dask and distributed cannot be imported (as after a plain
    ``pip install npl-xl``): the command line and a cell both name the extra."""
    script = BLOCK_DASK + textwrap.dedent(f"""
        from npl_xl.cli import main_cli
        from npl_xl.sheet.registry import load_all
        from npl_xl.workbook.book import FileBook
        book = FileBook({str(SAMPLE)!r})
        tables = [book.read_table(n).rows for n in ("Tape", "Tranches", "Settings")]
        cell = load_all()["NPL_TRANCHE_EL"](tables[0], tables[1],
                                            [r if r[0] != "scheduler" else ["scheduler", "local:2"]
                                             for r in tables[2]], 8, 0)
        print("CELL", cell.code, cell.message)
        code = main_cli(["run", {str(SAMPLE)!r}, "-o", {str(tmp_path / 'x.xlsx')!r},
                         "--quiet", "--scheduler", "local:2"])
        print("EXIT", code)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert "EXIT 2" in done.stdout, done.stderr
    assert "CELL #VALUE!" in done.stdout and "pip install npl-xl[cluster]" in done.stdout
    assert done.stderr.count("\n") == 1 and "pip install npl-xl[cluster]" in done.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_the_wait_for_lost_workers_is_60_s_or_the_environment_variable(monkeypatch):
    monkeypatch.delenv("NPL_XL_NO_WORKERS_SECONDS", raising=False)
    assert npl_cluster.no_workers_seconds() == npl_cluster.NO_WORKERS_SECONDS == 60.0
    monkeypatch.setenv("NPL_XL_NO_WORKERS_SECONDS", " 2.5 ")
    assert npl_cluster.no_workers_seconds() == 2.5
    for bad in ("abc", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("NPL_XL_NO_WORKERS_SECONDS", bad)
        with pytest.raises(npl_cluster.ClusterError, match="NPL_XL_NO_WORKERS_SECONDS must be a "
                                                           "number of seconds > 0") as caught:
            npl_cluster.no_workers_seconds()
        assert caught.value.argument == "scheduler" and repr(bad) in str(caught.value)
