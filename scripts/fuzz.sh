#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes with cargo-fuzz (libFuzzer), one target at a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets (fuzz/fuzz_targets/): safetensors (checkpoint and trace tensors), config_json (every
# family's config.json, then a whole model loaded from it), tokenizer_json (our BPE fast path and
# the tokenizers fallback, then encode and decode), pickle (pytorch_model.bin), trace_bundle
# (trace.json + tensors.safetensors rendered into every view). Default: 60 s each, all targets.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants a nightly compiler; on stable,
# RUSTC_BOOTSTRAP=1 (set here) lets it pass its -Z flags. The build is release with debug
# assertions and overflow checks (cargo-fuzz's default) and no sanitizer (`-s none`: the code is
# safe Rust; what we look for is panics, overflows, aborts, hangs and memory blow-ups).
# Each run is limited to 4 GB of memory and 10 s per input; a finding stops the run and is
# written to fuzz/artifacts/TARGET/. Seeds come from fixtures/ and from traces the release
# binary writes (fuzz/corpus/ and fuzz/artifacts/ are not committed; fuzz/regressions/ is).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1

cd "$root"
cargo build --release --workspace --bin ecco
ecco="$root/target/release/ecco"

seeds="$root/fuzz/corpus"
mkdir -p "$seeds"/{safetensors,config_json,tokenizer_json,pickle,trace_bundle}
for dir in fixtures/*/; do
    name="$(basename "$dir")"
    [ -f "$dir/config.json" ] && cp "$dir/config.json" "$seeds/config_json/$name.json"
    # Small files only: libFuzzer mutates whole inputs, and GPT-2's 1.5 MB tokenizer is slow.
    if [ -f "$dir/tokenizer.json" ] && [ "$(stat -c %s "$dir/tokenizer.json")" -lt 65536 ]; then
        cp "$dir/tokenizer.json" "$seeds/tokenizer_json/$name.json"
    fi
    for st in "$dir"*.safetensors; do
        if [ -f "$st" ] && [ "$(stat -c %s "$st")" -lt 1048576 ]; then
            cp "$st" "$seeds/safetensors/$name-$(basename "$st")"
        fi
    done
done
cp fixtures/gpt2-deep-pytorch/pytorch_model.bin "$seeds/pickle/gpt2-deep.bin"

# Trace bundles as the trace_bundle target reads them: a little-endian u32 length, trace.json,
# then tensors.safetensors.
traces="$(mktemp -d)"
trap 'rm -rf "$traces"' EXIT
"$ecco" generate --prompt "The capital of France is" --max-new-tokens 3 --attribution grad_x_input \
    --activations --hidden-states --attention --out "$traces/causal" 2>/dev/null
"$ecco" forward --model fixtures/bert-wordpiece --text "The capital of France is [MASK]." \
    --activations --hidden-states --attention --out "$traces/masked" 2>/dev/null
"$ecco" generate --model fixtures/t5-relu --prompt "translate: the cat" --max-new-tokens 3 \
    --activations --hidden-states --attention --out "$traces/seq2seq" 2>/dev/null
for t in causal masked seq2seq; do
    json="$traces/$t/trace.json"
    {
        perl -e 'print pack("V", shift)' "$(stat -c %s "$json")"
        cat "$json" "$traces/$t/tensors.safetensors"
    } >"$seeds/trace_bundle/$t.bin"
done

cd "$root/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none
for target in "${targets[@]}"; do
    case "$target" in
        tokenizer_json | config_json) max_len=65536 ;;
        *) max_len=1048576 ;;
    esac
    mkdir -p "corpus/$target"
    regressions=()
    [ -d "regressions/$target" ] && regressions=("regressions/$target")
    echo "== $target: $seconds s"
    nice -n 10 cargo fuzz run -s none "$target" "corpus/$target" "${regressions[@]}" -- \
        -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=4096 -malloc_limit_mb=4096 -timeout=10 -print_final_stats=1
done
