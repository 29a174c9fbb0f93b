import Foundation
import Testing
import TestSupport

/// Issue 23 §4: a broken configuration was accepted in silence. Now: an error naming the file,
/// the line, the key and the value where the value cannot be used (udocker 1.3.17 dies with a
/// Python traceback on the same files), a warning for an unknown key, and a configuration that
/// udocker 1.3.17 itself accepts draws no word.
@Suite("E2E broken configuration", e2eEnabled)
struct BadConfigTests {
    /// Writes `contents` as the user's `--config` file and runs `images` with it.
    func withConfig(
        _ box: E2ESandbox, _ contents: String, mode: mode_t = 0o644, args: [String] = ["images"]
    ) async throws
        -> (CommandResult, String)
    {
        let path = "\(box.path)/bad.conf"
        try box.writeUserFile(path, contents, mode: mode)
        return (try await box.udocker(["--config=\(path)"] + args), path)
    }

    @Test("random bytes: one error naming the file")
    func randomBytesConfig() async throws {
        let box = try sandbox()
        let path = "\(box.path)/bad.conf"
        var bytes = [UInt8](repeating: 0, count: 512)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        bytes[0] = 0x8a  // not UTF-8, whatever the rest is
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try box.chownToUser(path)
        let r = try await box.udocker(["--config=\(path)", "images"])
        expectOneLineError(r, mentioning: [path, "not a text file"])
    }

    @Test("no [DEFAULT] section: one error naming the file, line and key")
    func noSectionConfig() async throws {
        let box = try sandbox()
        let (r, path) = try await withConfig(box, "# site settings\nverbose_level = 4\n")
        expectOneLineError(r, mentioning: ["\(path) line 2", "verbose_level", "[DEFAULT]"])
    }

    @Test("a value of the wrong type: one error naming file, key and value")
    func wrongTypeConfig() async throws {
        let box = try sandbox()
        let (r, path) = try await withConfig(box, "[DEFAULT]\nverbose_level = loud\n")
        expectOneLineError(r, mentioning: ["\(path) line 2", "verbose_level = loud", "not a whole number"])
        // The same in ~/.udocker/udocker.conf (an implicit location).
        let home = "\(box.home)/.udocker/udocker.conf"
        try box.makeUserDirectory("\(box.home)/.udocker", mode: 0o700)
        try box.writeUserFile(home, "[DEFAULT]\npull_parallelism = many\n")
        let h = try await box.udocker(["images"])
        expectOneLineError(h, mentioning: ["\(home) line 2", "pull_parallelism = many"])
    }

    @Test("an unknown key: a warning naming file, key and value; the command runs")
    func unknownKeyConfig() async throws {
        let box = try sandbox()
        let (r, path) = try await withConfig(box, "[DEFAULT]\nverbose_levle = 4\n")
        expectSuccess(r)
        let warnings = r.stderrLines.filter { $0.hasPrefix("Warning:") }
        #expect(warnings.count == 1, "\(r)")
        #expect(warnings.first?.contains("\(path) line 2: unknown key verbose_levle = 4") == true, "\(r)")
    }

    @Test("an unreadable --config file: one error")
    func unreadableConfig() async throws {
        let box = try sandbox()
        let (r, path) = try await withConfig(box, "[DEFAULT]\nverbose_level = 4\n", mode: 0o000)
        expectOneLineError(r, mentioning: ["cannot read config file \(path)", "permission denied"])
    }

    @Test("UDOCKER_LOGLEVEL=abc: one error naming the variable")
    func badLogLevel() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["images"], environment: ["UDOCKER_LOGLEVEL": "abc"])
        expectOneLineError(r, mentioning: ["UDOCKER_LOGLEVEL=abc"])
    }

    @Test("every key udocker 1.3.17's showconf prints, and its sample's keys, as a config file: no warning")
    func udockerConfigIsQuiet() async throws {
        let box = try sandbox()
        let py = try await box.python(["showconf"])
        try #require(py.status == 0, "\(py)")
        let keys = py.stdout.split(separator: "\n").filter { $0.contains(" = ") }
        #expect(keys.count >= 60, "\(py.stdout)")
        let text = "[DEFAULT]\n" + keys.joined(separator: "\n") + "\ndefault_execution_mode = P1\n#use_curl_exec =\n"
        let (r, _) = try await withConfig(box, text, args: ["showconf"])
        expectSuccess(r)
        #expect(!r.stderr.contains("Warning:") && !r.stderr.contains("Error:"), "\(r)")
    }
}
