"""A real SLURM for the tests (Debian's slurm-wlm and munge): munged, slurmctld and one slurmd
per node, started as root with their key, config, state, spool and logs in one folder of the test
session's, never the machine's own /etc or /var. Two nodes, both on this machine (one slurmd each,
on ports of their own: Debian builds SLURM with multiple-slurmd support), so that a job may span
two nodes: SLURM starts one task on each, with SLURM_NODEID 0 and 1, as on two machines. A
process that sets SLURM_CONF (`Cluster.env`) talks to it with the ordinary sbatch, squeue,
scontrol and scancel. No accounting (sacct answers
with an error), as on many small clusters; two GPUs that are names only. Timings tuned for tests:
a requeued job eligible again after 5 s (cred_expire; SLURM's default is 120 s), KillWait of 5 s,
the scheduler run every 2 s."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
NODES = ("act1", "act2")
CPUS = 2  # each node's
# GPUs with no device behind them (SLURM wants a file for each): a job may ask for 2, and its
# cell runs 2 ranks on the CPU.
FAKE_GPUS = ("/dev/null", "/dev/zero")


def tool(name: str) -> str | None:
    """Where a SLURM or munge program is (daemons live in /usr/sbin, which a PATH may lack)."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def missing() -> str | None:
    """Why no cluster can start here (None: it can)."""
    if os.geteuid() != 0:
        return "a real SLURM needs root to start slurmd (we are not root)"
    lost = [name for name in (*DAEMONS, "sbatch", "squeue", "scontrol", "scancel", "srun") if tool(name) is None]
    return f"a real SLURM needs Debian's slurm-wlm and munge ({', '.join(lost)} not installed)" if lost else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf_text(home: Path, host: str) -> str:
    return f"""ClusterName=acttest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={home}/munge.socket,cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={home}/state
SlurmdSpoolDir={home}/spool/%n
SlurmctldPidFile={home}/slurmctld.pid
SlurmdPidFile={home}/slurmd.%n.pid
SlurmctldLogFile={home}/slurmctld.log
SlurmdLogFile={home}/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=5
MinJobAge=600
InactiveLimit=0
Waittime=0
MessageTimeout=10
GresTypes=gpu
""" + "".join(f"NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 Port={free_port()} CPUs={CPUS} "
            f"Gres=gpu:{len(FAKE_GPUS)} State=UNKNOWN\n" for node in NODES) + \
        f"PartitionName=test Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE State=UP\n"


class Cluster:
    """The daemons of a one-node cluster in `home`; `stop` ends them (and the jobs they ran)."""

    def __init__(self, home: Path):
        self.home, self.host = home, socket.gethostname()
        self.conf = home / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.daemons: list[subprocess.Popen] = []

    def start(self, timeout: float = 60.0) -> None:
        for sub in ("state", *(f"spool/{node}" for node in NODES)):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        key = self.home / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        self.conf.write_text(conf_text(self.home, self.host))
        (self.home / "gres.conf").write_text("AutoDetect=off\n" + "".join(
            f"NodeName={node} Name=gpu File={device}\n" for node in NODES for device in FAKE_GPUS))
        self.spawn(["munged", "-F", "-f", f"--socket={self.home}/munge.socket", f"--key-file={key}",
                    f"--pid-file={self.home}/munged.pid", f"--log-file={self.home}/munged.log",
                    f"--seed-file={self.home}/munged.seed"])
        self.wait(lambda: (self.home / "munge.socket").exists(), timeout, "munged")
        self.spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)])
        for node in NODES:
            self.spawn(["slurmd", "-D", "-N", node, "-f", str(self.conf)], f"slurmd.{node}")
        self.wait(self.idle, timeout, "slurmd")

    def spawn(self, argv: list[str], name: str = "") -> None:
        with open(self.home / f"{name or argv[0]}.out", "w") as log:
            self.daemons.append(subprocess.Popen([tool(argv[0]), *argv[1:]], env=self.env, stdout=log,
                                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                 start_new_session=True))

    def idle(self) -> bool:
        said = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).split()
        return len(said) == len(NODES) and all(state in ("idle", "mix", "alloc") for state in said)

    def wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.daemons if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster's {what} did not come up ({', '.join(dead) or 'timed out'}); "
                                   f"logs in {self.home}")
            time.sleep(0.2)

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def cancel_all(self) -> None:
        self.run("scancel", "--user=root", check=False)

    def stop(self) -> None:
        self.cancel_all()
        for process in reversed(self.daemons):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
