"""Histories: what each client asked, when, and what it was told.

One record per operation, as Jepsen keeps them:

    {"id": 7, "process": 3, "workload": "register", "f": "cas", "key": "r0.1",
     "args": [4, 1093], "status": "ok", "result": 5, "call": 0.731, "ret": 0.742}

`status` is ok (it took effect, with `result`), fail (it certainly did not
take effect: BADVERSION, NONODE, ...) or info (unknown: the answer never
came; `ret` is None, and the operation may take effect at any time after
`call`, or never). Times are seconds since the run began, from one monotonic
clock. A process that sees an info operation is never used again: its
client continues as a new process, so every process has at most one
operation in flight, as the checkers assume.
"""
import itertools
import json
import threading
import time


class History:
    def __init__(self):
        self.ops = []
        self.faults = []  # {"kind", "detail", "start", "end"}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def invoke(self, process, workload, f, key, args):
        op = {"id": next(self._ids), "process": process, "workload": workload, "f": f, "key": key,
              "args": args, "status": None, "result": None, "call": self.now(), "ret": None}
        with self._lock:
            self.ops.append(op)
        return op

    def complete(self, op, status, result=None, error=None):
        op["status"] = status
        op["result"] = result
        if status != "info":
            op["ret"] = self.now()
        if error:
            op["error"] = error

    def fault(self, kind, detail):
        rec = {"kind": kind, "detail": detail, "start": self.now(), "end": None}
        with self._lock:
            self.faults.append(rec)
        return rec

    def healed(self, rec):
        rec["end"] = self.now()

    def dump(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op) + "\n")
            for rec in self.faults:
                f.write(json.dumps({"fault": rec}) + "\n")

    @staticmethod
    def load(path):
        h = History()
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if "fault" in rec:
                    h.faults.append(rec["fault"])
                else:
                    h.ops.append(rec)
        return h
