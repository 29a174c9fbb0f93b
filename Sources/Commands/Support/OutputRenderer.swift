import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Renders the output channel on stderr. Messages up to the verbosity (`-q` 1, default 3, `-D` 5,
/// `UDOCKER_LOGLEVEL`). Progress shows at Info and above: on a terminal as live lines (one per
/// blob being fetched plus a total with rate and ETA, redrawn in place); otherwise one plain line
/// per step and a summary, never an escape code. Colour and live lines only on a terminal and
/// never with `NO_COLOR` (or `TERM=dumb`).
final class OutputRenderer: OutputSink, @unchecked Sendable {
    let verbosity: Int
    let live: Bool
    let colour: Bool
    private let lock = ConditionLock()
    private var state = PullState()
    /// Lines of the live block currently on screen (erased before anything else is written).
    private var drawn = 0
    private var lastDraw = 0.0

    init(verbosity: Int, environment: [String: String], terminal: Bool = isatty(2) == 1) {
        self.verbosity = verbosity
        // NO_COLOR (set and not empty, no-color.org) means no escape code at all: batch lines.
        live = terminal && environment["TERM"] != "dumb" && (environment["NO_COLOR"] ?? "").isEmpty
        colour = live
    }

    func emit(_ event: OutputEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .message(let level, let text):
            if level == .error || level.rawValue <= verbosity { line(Output.prefix(level), text, level) }
        case .warning(let w):
            if w.level.rawValue <= verbosity { line(Output.prefix(w.level), w.description, w.level) }
        case .text(let t):
            if verbosity >= OutputLevel.info.rawValue { write(erase() + t); redraw(force: true) }
        case .progress(let p):
            guard verbosity >= OutputLevel.info.rawValue else { return }
            state.apply(p, now: Self.now())
            live ? progressLive(p) : progressBatch(p)
        }
    }

    static func now() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func line(_ prefix: String, _ text: String, _ level: OutputLevel) {
        var p = prefix
        if colour, !p.isEmpty {
            let code = level == .error ? "31" : level == .warning ? "33" : level == .debug ? "2" : "36"
            p = "\u{1B}[\(code)m\(prefix.dropLast())\u{1B}[0m "
        }
        write(erase() + p + Format.printable(text, newlines: true) + "\n")
        redraw(force: true)
    }

    private func write(_ s: String) { FileDescriptorIO.write(2, s) }

    // MARK: batch: a line per step, no per-chunk lines, a summary

    private func progressBatch(_ p: ProgressEvent) {
        switch p {
        case .blobBytes, .pullStarted: return
        case .pullFinished(let image, let bytes):
            write(
                "Info: pulled \(Format.printable(image)): \(state.blobs.count) blob(s), \(Self.size(bytes)) in \(Self.duration(state.elapsed(Self.now())))\n"
            )
        default: write("Info: \(Format.printable(p.description))\n")
        }
    }

    // MARK: terminal: live lines redrawn in place

    private func progressLive(_ p: ProgressEvent) {
        switch p {
        case .pullFinished(let image, let bytes):
            write(erase())
            let line =
                "pulled \(Format.printable(image)): \(state.blobs.count) blob(s), \(Self.size(bytes)) in \(Self.duration(state.elapsed(Self.now())))"
            write((colour ? "\u{1B}[32mInfo:\u{1B}[0m " : "Info: ") + line + "\n")
            state = PullState()
        case .layerExtracted, .step:
            write(erase() + "\r" + (colour ? "\u{1B}[36mInfo:\u{1B}[0m " : "Info: ") + Format.printable(p.description) + "\n")
            redraw(force: true)
        case .blobBytes: redraw(force: false)
        default: redraw(force: true)
        }
    }

    /// Moves the cursor back over the live block and clears it.
    private func erase() -> String {
        guard live, drawn > 0 else { return "" }
        defer { drawn = 0 }
        return "\r\u{1B}[\(drawn)A\u{1B}[J"
    }

    private func redraw(force: Bool) {
        guard live, !state.blobs.isEmpty else { return }
        let now = Self.now()
        if !force && now - lastDraw < 0.1 { return }
        lastDraw = now
        var lines: [String] = []
        for name in state.order {
            guard let b = state.blobs[name] else { continue }
            let pct = b.total > 0 ? Int(b.done * 100 / b.total) : 100
            let bar = String(repeating: "=", count: pct / 5) + String(repeating: " ", count: 20 - pct / 5)
            lines.append(
                "\(Format.printable(name)) [\(bar)] \(Format.padded(String(pct), width: 3))% \(Self.size(b.done))/\(Self.size(b.total))"
                    + (b.status.isEmpty ? "" : " \(b.status)"))
        }
        let done = state.bytesDone, total = max(state.totalBytes, done)
        let rate = state.rate(now)
        let eta = rate > 0 && total > done ? " ETA \(Self.duration(Double(total - done) / rate))" : ""
        lines.append("total \(Self.size(done))/\(Self.size(total)) \(Self.size(Int64(rate)))/s\(eta)")
        write(erase() + lines.map { "\u{1B}[2K" + $0 }.joined(separator: "\n") + "\n")
        drawn = lines.count
    }

    static func size(_ n: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : Format.fixed(v) + " " + units[u]
    }

    static func duration(_ s: Double) -> String {
        s < 60 ? Format.fixed(s) + "s" : "\(Int(s) / 60)m\(Format.padded(String(Int(s) % 60), width: 2, with: "0"))s"
    }
}

/// What the renderer knows of the pull in progress.
struct PullState {
    struct Blob { var done: Int64 = 0; var total: Int64 = 0; var status = "" }
    var blobs: [String: Blob] = [:]
    var order: [String] = []
    var totalBytes: Int64 = 0
    var started: Double?
    /// Bytes that were already on disk (present or resumed): not part of the rate.
    var skipped: Int64 = 0

    var bytesDone: Int64 { blobs.values.reduce(0) { $0 + $1.done } }
    func elapsed(_ now: Double) -> Double { started.map { now - $0 } ?? 0 }
    func rate(_ now: Double) -> Double {
        let t = elapsed(now)
        return t > 0.2 ? Double(bytesDone - skipped) / t : 0
    }

    mutating func apply(_ p: ProgressEvent, now: Double) {
        if started == nil { started = now }
        switch p {
        case .pullStarted(_, _, let bytes): self = PullState(); started = now; totalBytes = bytes
        case .blobStarted(let b, let bytes, let at):
            set(b) {
                $0.total = bytes; $0.done = at; $0.status = at > 0 ? "resuming" : ""
            }; skipped += at
        case .blobBytes(let b, let done, let total):
            set(b) {
                $0.done = done; $0.total = total
            }
        case .blobVerified(let b, let bytes):
            set(b) {
                $0.done = bytes; $0.total = bytes; $0.status = "verified"
            }
        case .blobPresent(let b, let bytes):
            set(b) {
                $0.done = bytes; $0.total = bytes; $0.status = "already present"
            }; skipped += bytes
        case .blobWaiting(let b): set(b) { $0.status = "waiting for another process" }
        case .blobResuming(let b, let at, _):
            set(b) {
                $0.done = at; $0.status = "reconnecting"
            }
        default: break
        }
    }

    private mutating func set(_ name: String, _ change: (inout Blob) -> Void) {
        if blobs[name] == nil { order.append(name) }
        change(&blobs[name, default: Blob()])
    }
}
