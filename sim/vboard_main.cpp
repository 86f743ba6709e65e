// The virtual board: a Verilator model of the chip top (`link="bytes"`), clocked free-running by this loop,
// with its host link served on a TCP socket and on a pty.
//
// Contract (sim/virtual_board.py builds and starts this; docs/virtual-board.md has the user's view):
// - The model is Verilated with `--prefix Vboard` from the board top `vboard_top` around the chip top
//   (sim/vboard_verilator.py: the same ports, with rst and the streams registered for speed); its ports are clk,
//   rst, the host->chip byte stream rx__payload/rx__valid/rx__ready and the chip->host byte stream
//   tx__payload/tx__valid/tx__ready.
// - This loop toggles clk itself; no Python runs per clock. It runs batches of kBatchCycles cycles; after a batch
//   in which the chip sent a byte, or once --poll-us microseconds passed since the last check, it services the
//   sockets (one non-blocking poll()): bytes from the host are queued and offered on rx one per accepted transfer, bytes
//   the chip sends on tx are queued and written to the host.
// - One host at a time, as on a serial port: the TCP client if one is connected, otherwise whoever has the pty
//   open. A second TCP client is refused (accepted and closed at once). Bytes the chip sends while no host is
//   connected wait in the queue (up to kQueueBytes; beyond that tx__ready drops and the chip waits).
// - A line-based control socket takes `stats`, `reset` and `shutdown` (see handle_control()), and on a chip with
//   LEDs/buttons `io` (their levels) and `buttons MASK` (the host plays the buttons).
// - On start it prints one line `TESSERA-VBOARD listening tcp=HOST:PORT control=HOST:PORT pty=PATH pid=PID`
//   (pty=- without a pty); on exit `TESSERA-VBOARD stopped reason=... cycles=N seconds=S cycles_per_s=R`.
//   SIGINT/SIGTERM, the control command `shutdown`, --max-cycles or the death of the parent
//   (--die-with-parent) stop it; the exit status is 0 in all these cases.
// - Built with -DVBOARD_TRACE and Verilator's --trace-fst, --trace FILE.fst writes the cycles
//   [--trace-start, --trace-end) as FST waveforms (one clock period = 10 time units of 1 ns).

#include "Vboard.h"
#include "verilated.h"
#ifdef VBOARD_TRACE
#include "verilated_fst_c.h"
#endif

// Verilator escapes the double underscore of Amaranth's port names (`rx__valid` becomes `rx___05Fvalid`).
#define RX_PAYLOAD rx___05Fpayload
#define RX_VALID rx___05Fvalid
#define RX_READY rx___05Fready
#define TX_PAYLOAD tx___05Fpayload
#define TX_VALID tx___05Fvalid
#define TX_READY tx___05Fready

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

constexpr size_t kQueueBytes = 64 * 1024;    // per direction; beyond it the producer is held back
constexpr size_t kMaxControlClients = 4;
constexpr size_t kMaxControlLine = 256;
constexpr uint64_t kBatchCycles = 64;        // cycles between checks of the clock and of the chip's output
constexpr uint64_t kHalfPeriod = 5;          // trace time units (ns) per clock half period

volatile sig_atomic_t g_signal = 0;

void on_signal(int number) { g_signal = number; }

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;            // 0: any free port
    int control_port = 0;    // 0: any free port
    bool pty = true;
    uint64_t poll_us = 100;
    uint64_t reset_cycles = 16;
    uint64_t max_cycles = 0;  // 0: run until stopped
    bool die_with_parent = false;
    std::string trace_path;
    uint64_t trace_start = 0;
    uint64_t trace_end = UINT64_MAX;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "vboard: %s\n", message.c_str());
    std::fprintf(stderr,
                 "usage: vboard [--host ADDR] [--port N] [--control-port N] [--no-pty] [--poll-us N]\n"
                 "              [--reset-cycles N] [--max-cycles N] [--die-with-parent]\n"
                 "              [--trace FILE.fst [--trace-start CYCLE] [--trace-end CYCLE]]\n");
    std::exit(2);
}

uint64_t parse_count(const std::string& flag, const char* text) {
    char* end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        usage_error(flag + " needs a non-negative integer, not '" + text + "'");
    }
    return value;
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage_error(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--host") options.host = value();
        else if (flag == "--port") options.port = static_cast<int>(parse_count(flag, value()));
        else if (flag == "--control-port") options.control_port = static_cast<int>(parse_count(flag, value()));
        else if (flag == "--no-pty") options.pty = false;
        else if (flag == "--poll-us") options.poll_us = parse_count(flag, value());
        else if (flag == "--reset-cycles") options.reset_cycles = parse_count(flag, value());
        else if (flag == "--max-cycles") options.max_cycles = parse_count(flag, value());
        else if (flag == "--die-with-parent") options.die_with_parent = true;
        else if (flag == "--trace") options.trace_path = value();
        else if (flag == "--trace-start") options.trace_start = parse_count(flag, value());
        else if (flag == "--trace-end") options.trace_end = parse_count(flag, value());
        else if (flag.rfind("+verilator", 0) == 0) continue;  // Verilator's own runtime options
        else usage_error("unknown option '" + flag + "'");
    }
    if (options.port > 65535 || options.control_port > 65535) usage_error("port numbers must be below 65536");
    if (options.trace_end <= options.trace_start) usage_error("--trace-end must be after --trace-start");
#ifndef VBOARD_TRACE
    if (!options.trace_path.empty()) usage_error("--trace needs the traced build (this binary has no tracing)");
#endif
    return options;
}

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int listen_tcp(const std::string& host, int port, int* bound_port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { std::perror("vboard: socket"); std::exit(1); }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) usage_error("--host '" + host + "' is not an IPv4 address");
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
        std::fprintf(stderr, "vboard: cannot listen on %s:%d: %s\n", host.c_str(), port, std::strerror(errno));
        std::exit(1);
    }
    listen(fd, 4);
    set_nonblocking(fd);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    *bound_port = ntohs(address.sin_port);
    return fd;
}

// A byte queue with a read position; compacted lazily so that pushes and pops are amortised O(1).
struct ByteQueue {
    std::vector<uint8_t> bytes;
    size_t head = 0;

    size_t size() const { return bytes.size() - head; }
    bool empty() const { return head == bytes.size(); }
    size_t room() const { return kQueueBytes > size() ? kQueueBytes - size() : 0; }
    const uint8_t* data() const { return bytes.data() + head; }
    uint8_t front() const { return bytes[head]; }
    void pop(size_t count) {
        head += count;
        if (head == bytes.size()) { bytes.clear(); head = 0; }
    }
    void push(uint8_t byte) { bytes.push_back(byte); }
    void push(const uint8_t* data, size_t count) {
        if (head > kQueueBytes) { bytes.erase(bytes.begin(), bytes.begin() + static_cast<long>(head)); head = 0; }
        bytes.insert(bytes.end(), data, data + count);
    }
    void clear() { bytes.clear(); head = 0; }
};

// Board I/O: the chip top's `leds`/`buttons` ports exist only on a chip built with LEDs/buttons (hw/io_node.py),
// so they are detected at compile time and one harness serves every chip top. The host plays the buttons and
// reads the LEDs with the control commands `io` and `buttons MASK` (docs/virtual-board.md).
template <typename T, typename = void> struct HasLeds : std::false_type {};
template <typename T> struct HasLeds<T, std::void_t<decltype(std::declval<T&>().leds)>> : std::true_type {};
template <typename T, typename = void> struct HasButtons : std::false_type {};
template <typename T> struct HasButtons<T, std::void_t<decltype(std::declval<T&>().buttons)>> : std::true_type {};

template <typename T> uint64_t read_leds(T& top) {
    if constexpr (HasLeds<T>::value) return top.leds;
    else return 0;
}

template <typename T> uint64_t read_buttons(T& top) {
    if constexpr (HasButtons<T>::value) return top.buttons;
    else return 0;
}

// Returns false when the chip has no buttons.
template <typename T> bool write_buttons(T& top, uint64_t levels) {
    if constexpr (HasButtons<T>::value) {
        top.buttons = levels;
        return true;
    } else {
        return false;
    }
}

struct ControlClient {
    int fd;
    std::string line;
};

class Board {
  public:
    explicit Board(const Options& options) : options_(options), context_(new VerilatedContext), top_(new Vboard(context_.get())) {
        start_ = std::chrono::steady_clock::now();
        last_poll_ = start_;
        poll_interval_ = std::chrono::microseconds(options_.poll_us);
#ifdef VBOARD_TRACE
        if (!options_.trace_path.empty()) {
            context_->traceEverOn(true);
            trace_.reset(new VerilatedFstC);
            top_->trace(trace_.get(), 99);
            trace_->open(options_.trace_path.c_str());
        }
#endif
        top_->clk = 0;
        top_->RX_VALID = 0;
        top_->TX_READY = 0;
        write_buttons(*top_, 0);  // released
        reset_pending_ = options_.reset_cycles;
    }

    void open_endpoints() {
        int data_port = 0, control_port = 0;
        listen_fd_ = listen_tcp(options_.host, options_.port, &data_port);
        control_listen_fd_ = listen_tcp(options_.host, options_.control_port, &control_port);
        std::string pty_path = "-";
        if (options_.pty) {
            int slave = -1;
            char name[256];
            if (openpty(&pty_fd_, &slave, name, nullptr, nullptr) < 0) { std::perror("vboard: openpty"); std::exit(1); }
            termios settings{};
            tcgetattr(slave, &settings);
            cfmakeraw(&settings);
            tcsetattr(slave, TCSANOW, &settings);
            // Closing our end of the slave makes the master report POLLHUP until a host opens the pty: that is
            // how the loop knows whether anybody is listening there.
            close(slave);
            set_nonblocking(pty_fd_);
            pty_path = name;
        }
        std::printf("TESSERA-VBOARD listening tcp=%s:%d control=%s:%d pty=%s pid=%d\n", options_.host.c_str(), data_port,
                    options_.host.c_str(), control_port, pty_path.c_str(), static_cast<int>(getpid()));
        std::fflush(stdout);
    }

    // Runs until a stop condition; returns the reason.
    std::string run() {
        for (;;) {
            uint64_t batch = kBatchCycles;
            if (options_.max_cycles != 0) {
                if (cycles_ >= options_.max_cycles) return "max-cycles";
                batch = std::min(batch, options_.max_cycles - cycles_);
            }
            uint64_t tx_before = tx_bytes_;
            step(batch);
            auto now = std::chrono::steady_clock::now();
            if (tx_bytes_ == tx_before && now - last_poll_ < poll_interval_) continue;
            last_poll_ = now;
            if (g_signal != 0) return g_signal == SIGINT ? "sigint" : "sigterm";
            if (options_.die_with_parent && getppid() != parent_) return "parent-exited";
            service_io();
            if (shutdown_requested_) return "shutdown";
        }
    }

    void finish(const std::string& reason) {
        top_->final();
#ifdef VBOARD_TRACE
        if (trace_) trace_->close();
#endif
        std::printf("TESSERA-VBOARD stopped reason=%s %s\n", reason.c_str(), stats().c_str());
        std::fflush(stdout);
    }

    void remember_parent() { parent_ = getppid(); }

  private:
    void step(uint64_t batch) {
        for (uint64_t remaining = batch; remaining != 0; --remaining) {
            top_->rst = reset_pending_ != 0;
            bool offer = !rx_.empty() && reset_pending_ == 0;
            top_->RX_VALID = offer;
            if (offer) top_->RX_PAYLOAD = rx_.front();
            top_->TX_READY = tx_.room() != 0;
            top_->clk = 0;
            top_->eval();
            dump(0);
            // The transfers happen at this rising edge: sample the handshakes with the inputs settled.
            bool rx_taken = offer && top_->RX_READY;
            bool tx_given = top_->TX_VALID && top_->TX_READY && reset_pending_ == 0;
            uint8_t tx_byte = top_->TX_PAYLOAD;
            top_->clk = 1;
            top_->eval();
            dump(kHalfPeriod);
            if (rx_taken) { rx_.pop(1); ++rx_bytes_; }
            if (tx_given) {
                tx_.push(tx_byte);
                ++tx_bytes_;
            }
            if (reset_pending_ != 0) --reset_pending_;
            ++cycles_;
        }
    }

    void dump(uint64_t offset) {
#ifdef VBOARD_TRACE
        if (trace_ && cycles_ >= options_.trace_start) {
            if (cycles_ < options_.trace_end) {
                trace_->dump(cycles_ * 2 * kHalfPeriod + offset);
            } else {
                trace_->close();
                trace_.reset();
            }
        }
#else
        (void)offset;
#endif
    }

    std::string stats() const {
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        char text[256];
        std::snprintf(text, sizeof text, "cycles=%" PRIu64 " seconds=%.3f cycles_per_s=%.0f rx_bytes=%" PRIu64 " tx_bytes=%" PRIu64,
                      cycles_, seconds, seconds > 0 ? static_cast<double>(cycles_) / seconds : 0.0, rx_bytes_, tx_bytes_);
        return text;
    }

    // One poll() over every endpoint, then whatever it reported ready.
    void service_io() {
        std::vector<pollfd> fds;
        fds.push_back({listen_fd_, POLLIN, 0});
        fds.push_back({control_listen_fd_, POLLIN, 0});
        size_t client_index = fds.size();
        if (client_fd_ >= 0) {
            short events = rx_.room() != 0 ? POLLIN : 0;
            if (!tx_.empty()) events |= POLLOUT;
            fds.push_back({client_fd_, events, 0});
        }
        size_t pty_index = fds.size();
        if (pty_fd_ >= 0) {
            short events = rx_.room() != 0 ? POLLIN : 0;
            if (!tx_.empty() && client_fd_ < 0) events |= POLLOUT;
            fds.push_back({pty_fd_, events, 0});
        }
        size_t control_index = fds.size();
        for (const ControlClient& control : controls_) fds.push_back({control.fd, POLLIN, 0});
        if (poll(fds.data(), fds.size(), 0) <= 0) return;

        // The client before the listener: a host that hung up must be gone before its successor is accepted.
        if (client_index < pty_index) {
            short revents = fds[client_index].revents;
            if (revents & (POLLIN | POLLHUP | POLLERR)) read_into_rx(client_fd_, true);
            if (client_fd_ >= 0 && (revents & POLLOUT)) write_from_tx(client_fd_, true);
        }
        if (fds[0].revents & POLLIN) accept_client();
        if (fds[1].revents & POLLIN) accept_control();
        if (pty_index < control_index) {
            short revents = fds[pty_index].revents;
            // POLLHUP on the master: no host has the pty open; nothing to read and nobody to write to.
            if (!(revents & POLLHUP)) {
                if (revents & POLLIN) read_into_rx(pty_fd_, false);
                if (revents & POLLOUT) write_from_tx(pty_fd_, false);
            }
        }
        for (size_t i = controls_.size(); i-- > 0;) {
            if (fds[control_index + i].revents & (POLLIN | POLLHUP | POLLERR)) serve_control(i);
        }
    }

    void accept_client() {
        int fd = accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        if (client_fd_ >= 0) {  // one host at a time, as on a serial port
            close(fd);
            return;
        }
        set_nonblocking(fd);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client_fd_ = fd;
    }

    void drop_client() {
        close(client_fd_);
        client_fd_ = -1;
    }

    void read_into_rx(int fd, bool is_client) {
        uint8_t buffer[4096];
        size_t room = rx_.room();
        if (room == 0) return;
        ssize_t count = read(fd, buffer, std::min(room, sizeof buffer));
        if (count > 0) rx_.push(buffer, static_cast<size_t>(count));
        else if (is_client && (count == 0 || (errno != EAGAIN && errno != EINTR))) drop_client();
    }

    void write_from_tx(int fd, bool is_client) {
        ssize_t count = is_client ? send(fd, tx_.data(), tx_.size(), MSG_NOSIGNAL) : write(fd, tx_.data(), tx_.size());
        if (count > 0) tx_.pop(static_cast<size_t>(count));
        else if (is_client && count < 0 && errno != EAGAIN && errno != EINTR) drop_client();
    }

    void accept_control() {
        int fd = accept(control_listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        if (controls_.size() >= kMaxControlClients) {
            close(fd);
            return;
        }
        set_nonblocking(fd);
        controls_.push_back({fd, {}});
    }

    void serve_control(size_t index) {
        char buffer[512];
        ssize_t count = read(controls_[index].fd, buffer, sizeof buffer);
        if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) {
            close(controls_[index].fd);
            controls_.erase(controls_.begin() + static_cast<long>(index));
            return;
        }
        if (count < 0) return;
        std::string& line = controls_[index].line;
        for (ssize_t i = 0; i < count; ++i) {
            if (buffer[i] == '\n') {
                std::string reply = handle_control(line) + "\n";
                send(controls_[index].fd, reply.data(), reply.size(), MSG_NOSIGNAL);
                line.clear();
            } else if (buffer[i] != '\r' && line.size() < kMaxControlLine) {
                line.push_back(buffer[i]);
            }
        }
    }

    // The control commands: `stats` (counters), `reset` (chip reset: rst high for --reset-cycles cycles; the
    // byte queues are emptied), `shutdown` (stop after replying).
    std::string handle_control(const std::string& command) {
        if (command == "stats") return "ok " + stats();
        if (command == "reset") {
            reset_pending_ = std::max<uint64_t>(options_.reset_cycles, 1);
            rx_.clear();
            tx_.clear();
            return "ok";
        }
        if (command == "io") {
            if (!HasLeds<Vboard>::value && !HasButtons<Vboard>::value) return "error this chip has no LEDs or buttons";
            return "ok leds=" + std::to_string(read_leds(*top_)) + " buttons=" + std::to_string(read_buttons(*top_)) +
                   " cycles=" + std::to_string(cycles_);
        }
        if (command.rfind("buttons ", 0) == 0) {
            char* end = nullptr;
            const char* text = command.c_str() + 8;
            unsigned long long levels = std::strtoull(text, &end, 0);
            if (end == text || *end != '\0') return "error buttons needs a number (bit i = button i down)";
            if (!write_buttons(*top_, levels)) return "error this chip has no buttons";
            return "ok buttons=" + std::to_string(read_buttons(*top_)) + " cycles=" + std::to_string(cycles_);
        }
        if (command == "shutdown") {
            shutdown_requested_ = true;
            return "ok";
        }
        return "error unknown command '" + command + "' (commands: stats, reset, shutdown, io, buttons MASK)";
    }

    Options options_;
    std::unique_ptr<VerilatedContext> context_;
    std::unique_ptr<Vboard> top_;
#ifdef VBOARD_TRACE
    std::unique_ptr<VerilatedFstC> trace_;
#endif
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_poll_;
    std::chrono::steady_clock::duration poll_interval_;
    uint64_t cycles_ = 0;
    uint64_t rx_bytes_ = 0;
    uint64_t tx_bytes_ = 0;
    uint64_t reset_pending_ = 0;
    bool shutdown_requested_ = false;
    pid_t parent_ = 0;
    ByteQueue rx_;  // host -> chip
    ByteQueue tx_;  // chip -> host
    int listen_fd_ = -1;
    int control_listen_fd_ = -1;
    int client_fd_ = -1;
    int pty_fd_ = -1;
    std::vector<ControlClient> controls_;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    struct sigaction action{};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Board board(options);
    // The parent's death shows as a changed getppid() (checked at every socket service). Not PR_SET_PDEATHSIG:
    // that fires when the *thread* that started the board ends, which a threaded host may do long before exit.
    if (options.die_with_parent) board.remember_parent();
    board.open_endpoints();
    std::string reason = board.run();
    board.finish(reason);
    return 0;
}
