import Testing
import UDockerSystem

/// The helpers that replace Foundation-only API must answer what Foundation answered.
@Suite struct TextFormatTests {
    @Test func numbers() {
        #expect(Format.hex([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Format.fixed(0) == "0.0")
        #expect(Format.fixed(1.25) == "1.2")  // printf: exact tie → even
        #expect(Format.fixed(1.26) == "1.3")
        #expect(Format.fixed(12.345, digits: 2) == "12.35" || Format.fixed(12.345, digits: 2) == "12.34")
        #expect(Format.fixed(-0.04) == "-0.0" || Format.fixed(-0.04) == "0.0")
        #expect(Format.fixed(-2.5) == "-2.5")
        #expect(Format.fixed(1023.96) == "1024.0")
        #expect(Format.padded("7", width: 3) == "  7")
        #expect(Format.padded("7", width: 2, with: "0") == "07")
        #expect(Format.padded("1234", width: 2) == "1234")
        #expect(Format.column("ab", width: 4) == "ab  ")
        #expect(Format.column("abcdef", width: 4) == "abcd")
    }

    @Test("Format.joined answers as joined(separator:)")
    func joining() {
        for parts in [[], [""], ["a"], ["a", "b"], ["", "x", ""], ["usr", "lib", "x86_64-linux-gnu"]] {
            for sep in ["/", " ", ", ", ""] {
                #expect(Format.joined(parts, separator: sep) == parts.joined(separator: sep), "\(parts) \(sep)")
            }
        }
        #expect(PathName.join(["usr", "lib"]) == "usr/lib" && PathName.normalize("/a/./b/../c/") == "/a/c")
    }

    @Test func trimming() {
        #expect("  a b \t\n".trimmed() == "a b")
        #expect(" \n a \n ".trimmed(where: \.isBlank) == "\n a \n")
        #expect("   ".trimmed() == "")
        #expect("\"'x'\"".trimmed(where: { "\"'".contains($0) }) == "x")
    }

    @Test("PathName.parent / lastComponent answer as NSString did")
    func paths() {
        let cases: [(String, String, String)] = [
            ("/a/b", "/a", "b"), ("/a/b/", "/a", "b"), ("/a", "/", "a"), ("/", "/", "/"), ("a", "", "a"),
            ("a/b", "a", "b"), ("", "", ""), ("/a//b", "/a", "b"),
        ]
        for (path, parent, last) in cases {
            #expect(PathName.parent(path) == parent, "parent of \(path)")
            #expect(PathName.lastComponent(path) == last, "last component of \(path)")
        }
    }

    @Test("JSONAny writes what JSONSerialization wrote (sorted keys, escapes, numbers)")
    func json() throws {
        let text =
            #"{"b":1,"B":2,"a10":3,"a9":4,"A":{},"e":[],"f":1.5,"g":2.0,"h":"x/y\u0001\n\t\"é","i":null,"j":true,"k":{"z":[1,2]},"_u":0,"Z":0}"#
        let value = try #require(JSONAny.parse(Array(text.utf8)))
        let compact = String(decoding: try JSONAny.serialize(value), as: UTF8.self)
        #expect(
            compact
                == #"{"_u":0,"A":{},"a9":4,"a10":3,"b":1,"B":2,"e":[],"f":1.5,"g":2,"h":"x\/y\u0001\n\t\"é","i":null,"j":true,"k":{"z":[1,2]},"Z":0}"#
        )
        let pretty = String(
            decoding: try JSONAny.serialize(["A": [String: Any](), "k": ["z": [1]]], options: [.prettyPrinted]), as: UTF8.self)
        #expect(pretty == "{\n  \"A\" : {\n\n  },\n  \"k\" : {\n    \"z\" : [\n      1\n    ]\n  }\n}")
        #expect(JSONAny.parse(Array("{\"a\":".utf8)) == nil)
        #expect(JSONAny.object(Array("[1]".utf8)) == nil)
        #expect(JSONAny.parse(Array("null".utf8)) is JSONNull)
    }

    @Test func subprocess() throws {
        let r = try Subprocess.run("/bin/sh", ["-c", "cat; echo err >&2; exit 3"], input: Array("in\n".utf8), errorOutput: .capture)
        #expect(r.exitStatus == 3)
        #expect(r.text == "in\nerr\n")
        let quiet = try Subprocess.run("/bin/sh", ["-c", "echo $X; echo err >&2"], environment: ["X": "1"])
        #expect(quiet.succeeded && quiet.text == "1\n")
        let killed = try Subprocess.run("/bin/sh", ["-c", "exec sleep 30"], timeout: 0.2)
        #expect(killed.exitStatus == nil)
        #expect(throws: SystemError.self) { try Subprocess.run("/nonexistent/tool", []) }
    }
}
