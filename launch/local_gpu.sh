#!/usr/bin/env bash
# Train on this machine's GPUs: `launch/single_host.sh gpu ...` (its header says how).
exec "$(dirname "${BASH_SOURCE[0]}")/single_host.sh" gpu "$@"
