import FoundationEssentials

/// udocker's message levels (`msg.py`): 0 ERR, 1 MSG, 2 WAR, 3 INF (default), 4 VER, 5 DBG.
public enum OutputLevel: Int, Sendable, Comparable {
    case error = 0, message, warning, info, verbose, debug
    public static func < (a: OutputLevel, b: OutputLevel) -> Bool { a.rawValue < b.rawValue }
}

/// What any module tells the user. Modules only produce events; the command line owns the
/// renderer (levels, `-q`/`-D`, terminal or batch, colour), installed with `Output.install`.
public enum OutputEvent: Sendable {
    /// A line at a level (`Info: …`; `.verbose` lines carry no prefix).
    case message(OutputLevel, String)
    case warning(OutputWarning)
    case progress(ProgressEvent)
    /// Text written as it is at `.info` and above (the run banner).
    case text(String)
}

/// Warnings with a meaning of their own, so that no consumer matches texts; `.text` for the rest.
public enum OutputWarning: Sendable, Hashable, CustomStringConvertible {
    /// A device node in a layer: expected in every rootfs, cannot be made rootless.
    case deviceNodeSkipped(layer: String, entry: String)
    /// Several of them, summarised in one line.
    case deviceNodesSkipped(count: Int)
    case text(String)

    public var description: String {
        switch self {
        case .deviceNodeSkipped(let layer, let entry):
            return "layer \(layer): skipped device node '\(entry)' (devices cannot be created without privileges)"
        case .deviceNodesSkipped(let count):
            return "skipped \(count) device node(s): devices cannot be created without privileges (/dev is bound from the host at run time)"
        case .text(let s): return s
        }
    }

    /// Skipped device nodes (single or summarised) show with `-D` only: every rootfs has some
    /// and /dev is bound from the host at run time.
    public var level: OutputLevel { isDeviceNode ? .debug : .warning }

    public var isDeviceNode: Bool {
        switch self {
        case .deviceNodeSkipped, .deviceNodesSkipped: return true
        case .text: return false
        }
    }
}

/// Typed progress of the long steps: pull (per layer), create (per layer), load/import/save.
public enum ProgressEvent: Sendable, CustomStringConvertible {
    /// A pull starts: the image, its blobs and their total size.
    case pullStarted(image: String, blobs: Int, bytes: Int64)
    /// A blob download starts (`resumedAt` > 0 when a partial download is continued).
    case blobStarted(blob: String, bytes: Int64, resumedAt: Int64)
    /// Bytes of a blob on disk so far.
    case blobBytes(blob: String, done: Int64, total: Int64)
    /// The blob's digest matched and it was published.
    case blobVerified(blob: String, bytes: Int64)
    case blobPresent(blob: String, bytes: Int64)
    case blobWaiting(blob: String)
    case blobResuming(blob: String, at: Int64, total: Int64)
    /// The pull ended: every blob verified and the tag published.
    case pullFinished(image: String, bytes: Int64)
    /// `create`: layer `index` (1-based) of `count` was extracted; `files` entries so far.
    case layerExtracted(index: Int, count: Int, files: Int)
    /// One step of load/import/save/clone, as a line.
    case step(String)

    /// The batch line (kept identical to the lines udocker-swift always printed).
    public var description: String {
        switch self {
        case .pullStarted(let image, let blobs, let bytes): return "pulling \(image): \(blobs) blob(s), \(bytes) bytes"
        case .blobStarted(let b, let bytes, let at):
            return at > 0 ? "\(b): resuming at \(at) of \(bytes) bytes" : "\(b): downloading \(bytes) bytes"
        case .blobBytes(let b, let done, let total): return "\(b): \(total > 0 ? done * 100 / total : 100)%"
        case .blobVerified(let b, _): return "\(b): done"
        case .blobPresent(let b, _): return "\(b): already present"
        case .blobWaiting(let b): return "\(b): waiting for another process downloading it"
        case .blobResuming(let b, let at, let total): return "\(b): connection lost at \(at) of \(total) bytes; resuming"
        case .pullFinished(let image, let bytes): return "pulled \(image) (\(bytes) bytes)"
        case .layerExtracted(let i, let n, let files): return "layer \(i)/\(n) extracted (\(files) files so far)"
        case .step(let s): return s
        }
    }
}

/// Receives every event of the process.
public protocol OutputSink: Sendable {
    func emit(_ event: OutputEvent)
}

/// The process's one output channel. Without an installed renderer, messages up to `.info` go
/// to stderr as plain lines and progress is dropped (library use, tests).
public struct Output: Sendable {
    public init() {}

    private static let lock = ConditionLock()
    nonisolated(unsafe) private static var sink: any OutputSink = PlainSink()

    public static func install(_ sink: any OutputSink) { lock.lock(); self.sink = sink; lock.unlock() }
    public static func emit(_ event: OutputEvent) {
        lock.lock(); let s = sink; lock.unlock()
        s.emit(event)
    }

    public func emit(_ event: OutputEvent) { Output.emit(event) }
    public func error(_ text: String) { emit(.message(.error, text)) }
    public func warning(_ text: String) { emit(.warning(.text(text))) }
    public func warning(_ w: OutputWarning) { emit(.warning(w)) }
    public func info(_ text: String) { emit(.message(.info, text)) }
    public func verbose(_ text: String) { emit(.message(.verbose, text)) }
    public func debug(_ text: String) { emit(.message(.debug, text)) }
    public func progress(_ p: ProgressEvent) { emit(.progress(p)) }
    public func text(_ raw: String) { emit(.text(raw)) }

    /// `Error: `, `Warning: `, … in front of a message line.
    public static func prefix(_ level: OutputLevel) -> String {
        switch level {
        case .error: return "Error: "
        case .message, .verbose: return ""
        case .warning: return "Warning: "
        case .info: return "Info: "
        case .debug: return "Debug: "
        }
    }

    struct PlainSink: OutputSink {
        func emit(_ event: OutputEvent) {
            let line: String
            switch event {
            case .message(let level, let text) where level <= .info:
                line = Output.prefix(level) + Format.printable(text, newlines: true) + "\n"
            case .warning(let w) where w.level <= .info: line = "Warning: \(Format.printable(w.description, newlines: true))\n"
            case .text(let t): line = t
            default: return
            }
            FileDescriptorIO.write(2, line)
        }
    }
}
