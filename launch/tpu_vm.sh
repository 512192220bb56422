#!/usr/bin/env bash
# Train on a single-host Cloud TPU VM: `launch/single_host.sh tpu ...` (its header says how).
exec "$(dirname "${BASH_SOURCE[0]}")/single_host.sh" tpu "$@"
