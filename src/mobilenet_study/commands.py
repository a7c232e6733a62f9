"""The pipeline's commands: `make quick`, `make cpu`, `make repro` (a profile,
:mod:`mobilenet_study.profiles`), and the grid in shards (`make shard`, `make assemble`,
`make shards`, :mod:`mobilenet_study.shards`). The full profile, sized for a GPU, first checks
that CUDA is usable (:mod:`mobilenet_study.devices`) and otherwise stops before any work.

Scaling out uses DVC's own machinery, no scheduler of ours. A shard trains its runs as one DVC
experiment; on N machines each pushes its outputs and run-cache to the shared DVC remote
(`dvc push --run-cache`), and the machine that assembles pulls them (`dvc pull --run-cache`) and
runs the pipeline, whose training stages then restore from the run-cache instead of training.
On one machine the shards are queued experiments run by `dvc queue start -j N` workers, which
share the repository's cache, so the run-cache is there already.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mobilenet_study.attempts import run_commands, timed_run
from mobilenet_study.devices import full_profile_check
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.profiles import (
    PROFILES,
    pipeline_command,
    profile_overrides,
    with_overrides,
)
from mobilenet_study.shards import (
    assemble_commands,
    local_absolute,
    parse_shard,
    queue_commands,
    remote_check,
    shard_commands,
    wait_for_queue,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=(*PROFILES, "shard", "assemble", "shards"))
    parser.add_argument("shard", nargs="?", help="shard: i/N (the i-th of N); shards: N")
    parser.add_argument("--profile", choices=PROFILES, default="full", help="for the shards")
    parser.add_argument("--data", help="CIFAR-10 source: URL, archive, or image-folder mirror")
    args = parser.parse_args(argv)
    profile = args.command if args.command in PROFILES else args.profile
    try:
        # Sized for a GPU: what trains the full profile refuses to fall back to the CPU
        # unasked. An assembly trains nothing the shards left in the run-cache.
        if profile == "full" and args.command != "assemble":
            what = "`make repro`" if args.command == "full" else f"`make {args.command}`"
            params = with_overrides(load_params(), profile_overrides(profile, None))
            full_profile_check(params, what=what)
        if args.command in PROFILES:
            commands = [pipeline_command(args.command, args.data)]
        elif args.command == "shard":
            index, count = parse_shard(args.shard)
            commands = shard_commands(load_params(), args.profile, args.data, index, count)
            remote_check()
        elif args.command == "assemble":
            commands = assemble_commands(args.profile, args.data)
        else:
            _, count = parse_shard(f"1/{args.shard}")
            # Queued experiments run in a copy of the repository under .dvc/tmp/exps, where a
            # path relative to this repository would point elsewhere.
            data = local_absolute(args.data)
            names, commands = queue_commands(load_params(), args.profile, data, count)
            args.data = data
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    is_profile = args.command in PROFILES
    if is_profile:
        params = with_overrides(load_params(), profile_overrides(args.command, args.data))
        try:
            status = timed_run(args.command, commands, params)
        except StudyError as err:  # an attempt of this profile already running
            print(f"error: {err}", file=sys.stderr)
            return 2
    else:
        status = run_commands(commands)
    if status == 0 and args.command == "shards":
        print(f"waiting for {', '.join(names)} (`dvc queue status`)", flush=True)
        failed = wait_for_queue(names)
        if failed:
            shown = ", ".join(failed)
            print(f"error: shards {shown} failed; see `dvc queue logs <name>`", file=sys.stderr)
            return 1
        status = run_commands([pipeline_command(args.profile, args.data)])
    if status == 0 and args.command != "shard":
        print(
            "\nResults: metrics/ (dvc metrics show), plots/ (dvc plots show), reports/.\n"
            "The run's params are in params.yaml: `dvc params diff` compares them with HEAD."
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
