// Free-running Verilator harness of the network benchmark (sim/bench_noc.py builds and runs it).
//
// The model is Verilated with `--prefix Vnoc`. Its ports: clk, rst, enable (in); cycles, sent, received (out, 32
// bits). Built with -DNOC_CHECKS (the TrafficBench of hw/noc_bench.py) it also reads duplicates, gaps, corrupt
// and done_sending. This loop toggles the clock itself and checks the stop condition once per kBatchCycles
// cycles, so no Python (and no cocotb) runs while the network does: the speed printed is the simulator's.
//
// Options: --cycles N    stop once the bench's `cycles` counter reaches N
//          --seconds S   stop once S seconds of wall-clock time have passed
//          --drain       (NOC_CHECKS only) stop once every node has sent its quota and everything sent arrived
// At least one of them is required; the first condition met stops the run. Output: one JSON line with the
// counters, "drained" (true/false), "seconds" (wall clock from the first enabled cycle to the stop), "cpu_seconds"
// (this process's CPU time over the same span), "cycles_per_s" (per wall-clock second) and "cycles_per_cpu_s"
// (per CPU second: the simulator's speed whatever else shares the machine).

#include "Vnoc.h"
#include "verilated.h"

#include <chrono>
#include <ctime>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

constexpr uint64_t kBatchCycles = 1024;
constexpr int kResetCycles = 4;

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "noc_bench: %s\nusage: noc_bench [--cycles N] [--seconds S] [--drain]\n", message.c_str());
    std::exit(2);
}

void tick(Vnoc& top) {
    top.clk = 0;
    top.eval();
    top.clk = 1;
    top.eval();
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t max_cycles = 0;
    double max_seconds = 0;
    bool drain = false;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--cycles" && i + 1 < argc) {
            char* end = nullptr;
            max_cycles = std::strtoull(argv[++i], &end, 10);
            if (*end != '\0') usage_error(std::string("--cycles needs an integer, not '") + argv[i] + "'");
        } else if (flag == "--seconds" && i + 1 < argc) {
            char* end = nullptr;
            max_seconds = std::strtod(argv[++i], &end);
            if (*end != '\0' || max_seconds <= 0) {
                usage_error(std::string("--seconds needs a positive number, not '") + argv[i] + "'");
            }
        } else if (flag == "--drain") {
            drain = true;
        } else if (flag.rfind("+verilator", 0) != 0) {
            usage_error("unknown option '" + flag + "'");
        }
    }
#ifndef NOC_CHECKS
    if (drain) usage_error("--drain needs the TrafficBench build (NOC_CHECKS)");
#endif
    if (max_cycles == 0 && max_seconds == 0 && !drain) usage_error("give --cycles, --seconds or --drain");

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vnoc>(context.get());
    top->enable = 0;
    top->rst = 1;
    for (int i = 0; i < kResetCycles; ++i) tick(*top);
    top->rst = 0;
    top->enable = 1;

    bool drained = false;
    auto started = std::chrono::steady_clock::now();
    std::clock_t cpu_started = std::clock();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
    while (true) {
        for (uint64_t i = 0; i < kBatchCycles; ++i) tick(*top);
#ifdef NOC_CHECKS
        drained = top->done_sending && top->received == top->sent;
        if (drain && drained) break;
#endif
        if (max_cycles != 0 && top->cycles >= max_cycles) break;
        if (max_seconds != 0 && elapsed() >= max_seconds) break;
    }
    double seconds = elapsed();
    double cpu_seconds = static_cast<double>(std::clock() - cpu_started) / CLOCKS_PER_SEC;
    top->final();

    std::printf("{\"cycles\": %" PRIu32 ", \"sent\": %" PRIu32 ", \"received\": %" PRIu32, top->cycles, top->sent,
                top->received);
#ifdef NOC_CHECKS
    std::printf(", \"duplicates\": %" PRIu32 ", \"gaps\": %" PRIu32 ", \"corrupt\": %" PRIu32,
                static_cast<uint32_t>(top->duplicates), static_cast<uint32_t>(top->gaps),
                static_cast<uint32_t>(top->corrupt));
#endif
    std::printf(", \"drained\": %s, \"seconds\": %.3f, \"cpu_seconds\": %.3f, \"cycles_per_s\": %.0f, "
                "\"cycles_per_cpu_s\": %.0f}\n",
                drained ? "true" : "false", seconds, cpu_seconds, top->cycles / seconds, top->cycles / cpu_seconds);
    return 0;
}
