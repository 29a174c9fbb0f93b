import Foundation
import Logging

/// Routes swift-log records (the registry client's retry notices, …) to udocker's message levels
/// on stderr, without timestamps: error → `Error:`, warning → `Warning:`, info/notice → `Info:`,
/// debug/trace → `Debug:` (only with `-D`).
struct MessageLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    init(verbosity: Int) {
        switch verbosity {
        case ..<1: logLevel = .critical
        case 1: logLevel = .error
        case 2: logLevel = .warning
        case 3, 4: logLevel = .info
        default: logLevel = .trace
        }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let prefix: String
        switch level {
        case .critical, .error: prefix = "Error"
        case .warning: prefix = "Warning"
        case .info, .notice: prefix = "Info"
        case .debug, .trace: prefix = "Debug"
        }
        FileHandle.standardError.write(Data("\(prefix): \(message)\n".utf8))
    }
}
