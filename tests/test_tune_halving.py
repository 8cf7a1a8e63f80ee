"""Successive halving (``rnnperf tune``'s default): the schedule, the promotions, the budget.

Most cases run the real loop and document (:func:`rnnperf.tune.halving_run.halving_sweep`) with a
fake measure function whose speeds are fixed per point, so which point survives each rung is
known; one case runs a real tiny tune with engine=numpy (five tiny measurements, two parity
workers, three compiles first: seconds).
"""

import pytest

from rnnperf import cli
from rnnperf.bench import plan, results
from rnnperf.bench.sweep import Settings
from rnnperf.errors import ConfigError
from rnnperf.tune import space as tune_space
from rnnperf.tune.budget import CUT, Budget, parse_budget
from rnnperf.tune.halving import figure, group_order, rank_reached, reached, schedule
from rnnperf.tune.halving_run import halving_sweep

SHAPE = "T=5,B=2,I=3,H=4"
SPACE = {"engine": ["numpy"], "floatX": ["float32", "float64"], "threads": ["1", "2"],
         "T": ["5", "6", "7"]}                                   # 12 points
CLEAN = ("THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", "PYTENSOR_FLAGS")


def jobs_of(space=SPACE):
    return tune_space.expand(space, plan.parse_shape(SHAPE), "train", None, None)


class Fake:
    """A measure function: point i runs at ``speeds[key]`` seq/s; records every call."""

    def __init__(self, jobs, fail=(), mismatch=(), on_call=None):
        self.speeds = {j.key: 100.0 + 10 * i for i, j in enumerate(jobs)}
        self.fail, self.mismatch, self.on_call = set(fail), set(mismatch), on_call
        self.calls = []

    def __call__(self, job, settings, envs=None, skip_parity=False, parities=None,
                 share_timeout=False):
        self.calls.append((job.key, settings, skip_parity))
        if self.on_call:
            extra = self.on_call(len(self.calls), job)
            if extra:
                m = job.blank(status="timeout")
                m.extra = extra
                return m
        if job.key in self.fail:
            return job.blank(status="failed", error="compile error")
        m = job.blank(times_s=[job.shape["B"] / self.speeds[job.key]] * settings.rounds)
        if not skip_parity:
            bad = job.key in self.mismatch
            m.extra = {"parity": (parities or {}).get(job.key) or
                       {"status": "mismatch" if bad else "ok", "max_rel": 0.0}}
        return m

    def rung_calls(self, settings):
        return [key for key, s, _ in self.calls if s.rounds == settings.rounds
                and s.min_time == settings.min_time]


def sweep(tmp_path, jobs, fake, budget=None, resume=False, eta=3):
    return halving_sweep(jobs, Settings(min_time=0.01, rounds=5), tmp_path / "s.json",
                         resume=resume, force=not resume, progress=False, runner=None,
                         envs={}, eta=eta, budget=budget or Budget(), measure=fake)


def fastest(fake, n, exclude=()):
    return sorted((k for k in fake.speeds if k not in exclude), key=lambda k: -fake.speeds[k])[:n]


def test_schedule_shrinks_by_eta_and_ends_at_full_length():
    final = Settings(min_time=0.1, rounds=7)
    rungs = schedule(48, final)
    assert [r.size for r in rungs] == [48, 16, 6, 2]
    assert rungs[-1].settings == final
    times = [r.settings.min_time for r in rungs]
    assert times == sorted(times) and times[-2] == pytest.approx(0.1 / 3)
    assert all(r.settings.rounds == 3 and r.settings.processes == 1 for r in rungs[:-1])
    assert [r.size for r in schedule(4, final)] == [4, 2]
    assert [r.size for r in schedule(1, final)] == [1]
    assert [r.size for r in schedule(48, final, eta=2)] == [48, 24, 12, 6, 3, 2]


def test_threads_variants_are_adjacent_so_the_second_finds_the_cache_warm():
    ordered = group_order(jobs_of())
    for a, b in zip(ordered[::2], ordered[1::2]):
        assert a.profile.replace("threads=1", "threads=2") == b.profile and a.shape == b.shape


def test_winner_survives_and_each_rung_measures_its_size(tmp_path):
    jobs = jobs_of()
    fake = Fake(jobs)
    doc, cut = sweep(tmp_path, jobs, fake)
    rungs = schedule(len(jobs), Settings(min_time=0.01, rounds=5))
    assert cut is None and [r.size for r in rungs] == [12, 4, 2]
    assert [len(fake.rung_calls(r.settings)) for r in rungs] == [12, 4, 2]
    assert set(fake.rung_calls(rungs[1].settings)) == set(fastest(fake, 4))
    assert set(fake.rung_calls(rungs[2].settings)) == set(fastest(fake, 2))
    assert all(skip for _, s, skip in fake.calls if s == rungs[0].settings)      # no parity
    ranked = rank_reached(results.load(tmp_path / "s.json").results)
    assert ranked[0].key == fastest(fake, 1)[0] and reached(ranked[0]) == 2
    assert [e["rung"] for e in ranked[0].extra["halving"]["rungs"]] == [0, 1, 2]
    assert figure(ranked[0], 0)["seq_per_s"] == pytest.approx(fake.speeds[ranked[0].key])
    assert doc.settings["strategy"] == "halving" and doc.settings["halving"]["cut"] is None


def test_failures_drop_at_rung_0_and_parity_failure_is_replaced(tmp_path):
    jobs = jobs_of()
    fake = Fake(jobs)
    top = fastest(fake, 6)
    fake.fail = {top[1]}                       # compile error: measured once, never again
    fake.mismatch = {top[0]}                   # the fastest fails parity when promoted
    sweep(tmp_path, jobs, fake)
    assert [k for k, _, _ in fake.calls].count(top[1]) == 1
    rung1 = fake.rung_calls(schedule(12, Settings(min_time=0.01, rounds=5))[1].settings)
    assert rung1 == top[:1] + top[2:6]         # the failure replaced by the next best
    ranked = rank_reached(results.load(tmp_path / "s.json").results)
    assert ranked[0].key == top[2] and reached(ranked[0]) == 2


def test_budget_cut_stops_early_and_marks_the_rc(tmp_path, monkeypatch):
    jobs = jobs_of()
    budget = Budget(3600.0, text="1h")

    def spend(n, job):                          # the budget runs out during rung 1
        if n == 14:
            budget.start -= 7200
    fake = Fake(jobs, on_call=spend)
    doc, cut = sweep(tmp_path, jobs, fake, budget=budget)
    assert cut == {"rung": 1, "of": 3, "budget": "1h", "budget_s": 3600.0}
    assert len(fake.calls) == 14 and max(reached(m) for m in doc.results) == 1
    assert doc.settings["halving"]["cut"]["rung"] == 1
    from rnnperf.tune.run import choose
    monkeypatch.chdir(tmp_path)
    best = choose(doc, jobs, tmp_path / "best.rc", tmp_path / "s.json", "t", cut=cut)
    text = (tmp_path / "best.rc").read_text()
    assert "CUT SHORT: --budget 1h ran out during rung 1" in text
    assert reached(best) == 1 and best.key == fastest(fake, 1)[0]


def test_a_measurement_cut_by_the_budget_is_thrown_away(tmp_path):
    jobs = jobs_of()
    fake = Fake(jobs, on_call=lambda n, job: {CUT: True} if n == 3 else None)
    doc, cut = sweep(tmp_path, jobs, fake, budget=Budget(3600.0, text="1h"))
    assert cut["rung"] == 0 and len(doc.results) == 2     # the third never recorded


def test_worker_timeout_never_passes_the_budget(tmp_path):
    jobs = jobs_of()
    fake = Fake(jobs)
    sweep(tmp_path, jobs, fake, budget=Budget(100.0))
    assert all(s.timeout <= 100.0 for _, s, _ in fake.calls)


def test_resume_measures_only_what_is_missing(tmp_path):
    jobs = jobs_of()
    first = Fake(jobs, on_call=lambda n, job: {CUT: True} if n == 15 else None)
    sweep(tmp_path, jobs, first, budget=Budget(3600.0))
    again = Fake(jobs)
    sweep(tmp_path, jobs, again, resume=True)
    assert len(again.calls) == 18 - 14        # rung 1's last two, then rung 2
    assert rank_reached(results.load(tmp_path / "s.json").results)[0].key == \
        fastest(again, 1)[0]


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h", 3600),
                                           ("1h30m", 5400), ("1.5m", 90), ("45", 45)])
def test_budget_parses(text, seconds):
    assert parse_budget(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "-5m", "0", "0s", "m", "10m10m", "1 h", "1e3"])
def test_bad_budget_is_refused(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget(text)


@pytest.mark.parametrize("extra", [["--budget", "10x"], ["--budget", "5m", "--strategy",
                                                         "exhaustive"], ["--eta", "1"]])
def test_bad_budget_on_the_command_line_exits_2_in_one_line(tmp_path, capsys, extra):
    code = cli.main(["tune", "--shape", SHAPE, "--engines", "numpy",
                     "--out", str(tmp_path / "best.rc"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert extra[0] in err and not (tmp_path / "best.sweep.json").exists()


def test_real_tiny_tune_records_rungs_and_the_rc_says_how(tmp_path, monkeypatch):
    for var in CLEAN:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "space.toml").write_text('[space]\nengine = ["numpy"]\nfloatX = ["float64"]\n'
                                         'threads = [1]\nT = [5, 6, 7]\n')
    code = cli.main(["tune", "--shape", SHAPE, "--space", str(tmp_path / "space.toml"),
                     "--out", str(tmp_path / "best.rc"), "--min-time", "0.001", "--rounds",
                     "5", "--no-progress", "--timeout", "120"])
    assert code == 0
    doc = results.load(tmp_path / "best.sweep.json")
    assert sorted(reached(m) for m in doc.results) == [0, 1, 1]
    assert all(m.extra["parity"]["status"] == "ok" for m in doc.results if reached(m) == 1)
    assert all("parity" not in m.extra for m in doc.results if reached(m) == 0)
    text = (tmp_path / "best.rc").read_text()
    assert "successive halving (eta 3, rungs of 3/2 points)" in text and "CUT" not in text
    assert "engine = numpy" in text


def test_budget_spent_before_any_parity_writes_no_rc(tmp_path, monkeypatch):
    from rnnperf.errors import CheckFailed
    from rnnperf.tune.run import choose
    jobs = jobs_of()
    budget = Budget(3600.0, text="90s")

    def spend(n, job):                          # runs out during rung 0: nothing checked yet
        if n == 5:
            budget.start -= 7200
    doc, cut = sweep(tmp_path, jobs, Fake(jobs, on_call=spend), budget=budget)
    assert cut["rung"] == 0 and len(doc.results) == 5
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckFailed, match="--budget 90s ran out at rung 0"):
        choose(doc, jobs, tmp_path / "best.rc", tmp_path / "s.json", "t", cut=cut)
    assert not (tmp_path / "best.rc").exists()


def test_live_table_marks_the_points_that_would_survive():
    from rnnperf.tune.live import LiveView

    class Screen:
        def update(self, renderable, refresh=False):
            self.last = renderable
    jobs = jobs_of()
    fake, rungs = Fake(jobs), schedule(12, Settings(min_time=0.01, rounds=5))
    view = LiveView(Screen(), rungs)
    view.start_rung(rungs[0], jobs)
    for job in jobs[:6]:
        view.done(job, fake(job, rungs[0].settings, skip_parity=True))
    assert view.survivors() == set(fastest(fake, 4, exclude=[j.key for j in jobs[6:]]))
    view.cut(jobs[7])
    assert view.rows[jobs[7].key][2] == "cut by --budget" and view.live.last.row_count == 12
    assert "12 points, 5 left" in view.live.last.title and "s to go" in view.live.last.title


def test_the_eta_counts_what_is_left_and_the_longer_rungs_after():
    from rnnperf.tune.live import eta_s
    rungs = schedule(12, Settings(min_time=0.9, rounds=5, processes=2))   # sizes 12, 4, 2
    first = rungs[0].settings
    per_point = 2.0 + first.rounds * first.min_time       # 2 s of load and warm-up each
    expected = 3 * per_point + sum(r.size * r.settings.processes *
                                   (2.0 + r.settings.rounds * r.settings.min_time)
                                   for r in rungs[1:])
    assert eta_s(rungs, 0, 3, per_point) == pytest.approx(expected)
    assert eta_s(rungs, len(rungs) - 1, 0, 5.0) == 0.0


def test_parity_lanes_keep_the_order_and_overlap_engines(monkeypatch):
    """``rnnperf parity``'s workers run one lane per engine, ``--jobs`` lanes at once."""
    import threading
    import time

    from rnnperf import flags
    from rnnperf.bench import process
    from rnnperf.cli.parity import run_lanes
    lock, state = threading.Lock(), {"now": 0, "most": 0, "running": [], "same": False}

    def fake_worker(job, config, payload, timeout=None, extra_env=None):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            state["same"] |= config.engine in state["running"]
            state["running"].append(config.engine)
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
            state["running"].remove(config.engine)
        return process.WorkerResult("failed", {}, f"fake {config.profile()}", 1, 0.05)
    monkeypatch.setattr(process, "run_worker", fake_worker)
    configs = [flags.load(flags=[f"engine={e},floatX={d}"], use_env=False)
               for e in ("numpy", "torch") for d in ("float32", "float64")]
    rows = run_lanes(configs, None, 10.0, None, 2)
    assert [r.error for r in rows[::2]] == [f"fake {c.profile()}" for c in configs]
    assert state["most"] == 2 and not state["same"]    # engines overlapped, one config each
    state["most"] = 0
    assert len(run_lanes(configs, None, 10.0, None, 1)) == 8 and state["most"] == 1


def test_prewarm_compiles_each_distinct_function_once(monkeypatch):
    from rnnperf.bench import process
    from rnnperf.tune.prewarm import distinct, prewarm
    jobs = jobs_of()
    assert len(distinct(jobs)) == 6                     # threads=1 and 2 share a function
    seen = []

    def fake_worker(job, config, payload, timeout=None, extra_env=None):
        seen.append((job, config.profile(), payload["shape"]["T"], timeout))
        return process.WorkerResult("ok" if len(seen) > 1 else "failed", {}, None, 0, 0.0)
    monkeypatch.setattr(process, "run_worker", fake_worker)
    out = prewarm(jobs, 600.0, 2, Budget(100.0))
    assert len(seen) == 6 and {j for j, _, _, _ in seen} == {"warm"}
    assert len({(p.replace("threads=2", "threads=1"), t) for _, p, t, _ in seen}) == 6
    assert all(t <= 100.0 for *_, t in seen) and len(out["failed"]) == 1


def test_processes_pool_passes_at_the_last_rung_only(tmp_path):
    """--processes N: the last rung measures each of its points N times, interleaved, and pools
    the rounds (the earlier rungs rank by one short measurement)."""
    jobs = jobs_of()
    fake = Fake(jobs)
    doc, _ = halving_sweep(jobs, Settings(min_time=0.01, rounds=5, processes=3),
                           tmp_path / "s.json", resume=False, force=True, progress=False,
                           runner=None, envs={}, eta=3, budget=Budget(), measure=fake)
    last = schedule(len(jobs), Settings(min_time=0.01, rounds=5, processes=3))[-1]
    finals = [m for m in doc.results if reached(m) == last.index]
    assert len(finals) == 2
    for m in finals:
        assert m.processes == 3 and len(m.times_s) == 3 * 5
    final_calls = fake.rung_calls(last.settings)
    assert len(final_calls) == 6 and final_calls[:2] == final_calls[2:4] == final_calls[4:]


def test_a_budget_cut_in_a_later_pass_keeps_the_pooled_finalists(tmp_path):
    """The budget runs out in pass 2 of the last rung: the tune stops there, and the finalists
    keep what pass 1 measured (a cut measurement is never pooled into a timeout)."""
    jobs = jobs_of()
    settings = Settings(min_time=0.01, rounds=5, processes=2)
    last = schedule(len(jobs), settings)[-1]
    fake = Fake(jobs)
    seen = []

    def cut_in_pass_two(n, job):
        if fake.calls[-1][1] == last.settings:
            seen.append(job.key)
            if len(seen) == 3:                 # the first measurement of pass 2
                return {CUT: True}
    fake.on_call = cut_in_pass_two
    doc, cut = halving_sweep(jobs, settings, tmp_path / "s.json", resume=False, force=True,
                             progress=False, runner=None, envs={}, eta=3, budget=Budget(),
                             measure=fake)
    assert cut == {"rung": last.index, "of": last.index + 1, "budget": None, "budget_s": None}
    finals = [m for m in doc.results if reached(m) == last.index]
    assert len(finals) == 2 and all(m.status == "ok" and (m.processes or 1) == 1 for m in finals)


def test_resume_runs_the_passes_the_last_rung_still_lacks(tmp_path):
    jobs = jobs_of()
    sweep(tmp_path, jobs, Fake(jobs))                              # one pass, to the end
    doc, _ = halving_sweep(jobs, Settings(min_time=0.01, rounds=5, processes=3),
                           tmp_path / "s.json", resume=True, force=False, progress=False,
                           runner=None, envs={}, eta=3, budget=Budget(), measure=Fake(jobs))
    finals = [m for m in doc.results if reached(m) == len(schedule(len(jobs), Settings())) - 1]
    assert finals and all(m.processes == 3 and len(m.times_s) == 15 for m in finals)
