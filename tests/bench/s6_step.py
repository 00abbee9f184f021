"""S6 pure step: the step function's micro-benchmark (tests/bench/bench_step.c, `make
bench-step`), steps per second without and with a Lua guard (issue 3: >= 2,000,000 and
>= 500,000 on one core). The pair alternates the plain variant (the baseline) and the
guarded one (the system), so the ratio is what a Lua guard costs on this machine now."""

import re
import subprocess

LINE = re.compile(r"bench_step: (.+?)\s+(\d+) steps/s")


def run_variant(binary, variant, steps):
    """steps/s of one variant; steps = 0 runs for about a second."""
    r = subprocess.run([str(binary), str(steps), variant], capture_output=True, text=True,
                       timeout=120)
    m = LINE.search(r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"bench_step {variant} failed:\n{r.stdout}\n{r.stderr}")
    return float(m.group(2))


class S6:
    def __init__(self, build, steps=0):
        self.binary = build / "bench" / "bench_step"
        self.steps = steps

    def pair(self):
        plain = run_variant(self.binary, "plain", self.steps)
        guard = run_variant(self.binary, "guard", self.steps)
        return {"system": {"steps_per_s_with_lua_guard": guard},
                "baseline": {"steps_per_s_without_guard": plain},
                "ratio": guard / plain}

    def describe(self):
        return {"binary": "build/bench/bench_step", "steps_per_variant": self.steps or
                "about 1 s", "system": "with a Lua guard", "baseline": "without a guard",
                "targets": {"steps_per_s_without_guard": 2000000,
                            "steps_per_s_with_lua_guard": 500000}}
