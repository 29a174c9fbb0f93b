import Foundation
import OCI
import Testing

/// `ImageConfig.fastDecode` (the run path's direct reading) against `JSONDecoder`: whatever it
/// answers, `JSONDecoder` answers the same; what it leaves (`nil`) is `JSONDecoder`'s to read.
@Suite struct ImageConfigFastTests {
    static let z = String(repeating: "a", count: 64)
    /// Configurations as registries serve them (docker build, buildkit, OCI tools).
    static let real: [String] = [
        #"{"architecture":"amd64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"ArgsEscaped":true,"OnBuild":null},"created":"2024-09-26T21:31:42Z","history":[{"created":"2024-09-26T21:31:42Z","created_by":"BusyBox 1.37.0 (glibc), Debian 12","comment":"buildkit.dockerfile.v0","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:\#(z)"]}}"#,
        ##"{"architecture":"amd64","author":"x <x@y>","config":{"Hostname":"","Domainname":"","User":"1000:1000","AttachStdin":false,"ExposedPorts":{"80/tcp":{},"443/tcp":{}},"Tty":false,"Env":["A=1","B=two words","C=\u00e9\"q\"\\"],"Cmd":null,"Image":"sha256:\##(z)","Volumes":{"/data":{}},"WorkingDir":"/srv","Entrypoint":["/bin/tini","--"],"Labels":{"org.opencontainers.image.title":"t","k":"v\/w"},"StopSignal":"SIGTERM"},"container_config":{"Cmd":["/bin/sh","-c","#(nop) CMD [\"sh\"]"],"Labels":{}},"created":"2023-01-01T00:00:00.123456789Z","docker_version":"20.10.7","history":[],"os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]},"size":12345,"nested":{"a":[1,-2.5e-3,0,true,false,null,{"b":[]}]}}"##,
        #"  {  "os" : "linux" , "config" : { "Env" : [ ] , "Cmd" : [ "a" ] } }  "#,
        "{\"os\":\"linux\",\"config\":{\"Env\":[\"TAB=\\t\",\"EMOJI=\\ud83d\\ude00\",\"NUL=\\u0000\"]}}",
        #"{"os":null,"config":null,"container_config":{},"rootfs":{"diff_ids":["sha256:\#(z)"],"type":"layers","extra":1}}"#,
    ]
    /// Lenient or odd input `JSONDecoder` takes its own way (or refuses): left to it.
    static let leftToJSONDecoder: [String] = [
        #"{"os":"a","os":"b"}"#, #"{"config":{"User":"u","User":"v"}}"#, #"{"config":{"Labels":{"a":"1","a":"2"}}}"#,
        #"{"os":"a",}"#, #"{"x":01}"#, #"{"x":1.}"#, #"{"x":-}"#, #"{"x":[1,2,]}"#, "\u{FEFF}{\"os\":\"a\"}",
        #"{"os":"\ud800"}"#, #"{"x":"\ud800"}"#, #"{"os":"\udc00"}"#, "{\"x\":\"a\u{1}b\"}", #"{"x":"\a"}"#, #"{"x":nan}"#,
        #"{"os":"a"} x"#, #"{"x":truex}"#, #"{"config":{"ExposedPorts":{"80/tcp":null}}}"#,
        #"{"config":{"Env":["a",null]}}"#, #"{"config":{"User":5}}"#, #"{"rootfs":{"type":"layers"}}"#,
        #"{"rootfs":{"type":"layers","diff_ids":["sha256:../x"]}}"#, #"[]"#, #""os""#, "", "{", #"{"os":"a""#,
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        "{\"x\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}",
    ]

    static func reference(_ bytes: [UInt8]) -> ImageConfig? { try? JSONDecoder().decode(ImageConfig.self, from: Data(bytes)) }

    @Test("real configurations are read directly, to JSONDecoder's value")
    func realConfigurations() throws {
        for text in Self.real {
            let bytes = Array(text.utf8)
            let fast = try #require(ImageConfig.fastDecode(bytes), "not read directly: \(text)")
            #expect(fast == Self.reference(bytes), "\(text)")
        }
        let c = try #require(ImageConfig.fastDecode(Array(Self.real[1].utf8)))
        #expect(c.config?.env == ["A=1", "B=two words", "C=é\"q\"\\"])
        #expect(c.config?.exposedPorts?.keys.sorted() == ["443/tcp", "80/tcp"])
        #expect(c.config?.labels?["k"] == "v/w" && c.containerConfig?.labels == [:] && c.variant == "v8")
        #expect(c.config?.cmd == nil && c.config?.entrypoint == ["/bin/tini", "--"] && c.rootfs?.diffIDs == [])
    }

    @Test("lenient, odd or wrong input is left to JSONDecoder")
    func leftToTheDecoder() {
        for text in Self.leftToJSONDecoder {
            #expect(ImageConfig.fastDecode(Array(text.utf8)) == nil, "\(text.prefix(80))")
        }
    }

    @Test("an object of 20,000 keys (numbers, labels) is read directly, to JSONDecoder's value")
    func manyKeys() throws {
        let numbers = (0..<20_000).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let labels = (0..<20_000).map { "\"k\($0)\":\"v\($0)\"" }.joined(separator: ",")
        let bytes = Array("{\"os\":\"linux\",\"x\":{\(numbers)},\"config\":{\"Labels\":{\(labels)}}}".utf8)
        let fast = try #require(ImageConfig.fastDecode(bytes))
        #expect(fast == Self.reference(bytes))
        #expect(fast.config?.labels?.count == 20_000 && fast.config?.labels?["k7"] == "v7")
    }

    @Test("mutated configurations: a direct answer is always JSONDecoder's answer")
    func mutations() {
        var rng = SplitMix(seed: 0x5eed)
        var direct = 0
        let alphabet = Array(#"{}[],:"\ u0123456789abcdefnrtl.-+eE"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        for n in 0..<6000 {
            var bytes = Array(Self.real[n % Self.real.count].utf8)
            for _ in 0...(rng.next() % 3) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: at)
                default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                }
            }
            guard let fast = ImageConfig.fastDecode(bytes) else { continue }
            direct += 1
            let reference = Self.reference(bytes)
            #expect(fast == reference, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(direct > 500, "too few mutations were read directly (\(direct)) for the comparison to mean much")
    }

    /// An `ImageConfig` with every field set, `config` and `container_config` different.
    /// `unsetFields` holds this list to the type: a field added to `ImageConfig` (or `Config`,
    /// `RootFS`) must be set here, and then `everyFieldIsReadDirectly` fails until the fast
    /// reader reads it too (it skips unknown keys, so it would answer `nil` for the field).
    static func everyField() throws -> ImageConfig {
        var run = ImageConfig.Config()
        run.user = "1000:1000"
        run.env = ["A=1", "B=two words"]
        run.entrypoint = ["/bin/tini", "--"]
        run.cmd = ["sh", "-c", "echo x"]
        run.workingDir = "/srv"
        run.hostname = "host"
        run.domainname = "example.org"
        run.exposedPorts = ["80/tcp": .init()]
        run.volumes = ["/data": .init()]
        run.labels = ["k": "v"]
        run.stopSignal = "SIGTERM"
        var build = run
        build.cmd = ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"]
        build.labels = ["stage": "build"]
        var c = ImageConfig(
            architecture: "arm64", os: "linux", config: run,
            rootfs: .init(type: "layers", diffIDs: [try Digest(parsing: "sha256:" + z)]))
        c.variant = "v8"
        c.created = "2023-01-01T00:00:00Z"
        c.author = "x <x@y>"
        c.containerConfig = build
        return c
    }

    /// The fields of `value` that are nil or empty, found by reflection (so that no list of
    /// field names has to be kept by hand): `.config.stopSignal`, ...
    static func unsetFields(_ value: Any, path: String = "") -> [String] {
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            guard let some = mirror.children.first else { return [path] }
            return unsetFields(some.value, path: path)
        case .collection, .dictionary, .set: return mirror.children.isEmpty ? [path] : []
        case .struct: return mirror.children.flatMap { unsetFields($0.value, path: path + "." + ($0.label ?? "?")) }
        default: return []
        }
    }

    @Test("every field of ImageConfig is read directly (a field the fast reader skipped would be nil on the run path)")
    func everyFieldIsReadDirectly() throws {
        let full = try Self.everyField()
        #expect(Self.unsetFields(full) == [], "set these fields in ImageConfigFastTests.everyField")
        #expect(Self.unsetFields(ImageConfig()).count >= 8, "the reflection no longer sees ImageConfig's fields")
        let bytes = Array(try JSONEncoder().encode(full))
        #expect(Self.reference(bytes) == full, "JSONDecoder loses a field (missing from CodingKeys?)")
        let fast = try #require(ImageConfig.fastDecode(bytes), "not read directly: \(String(decoding: bytes, as: UTF8.self))")
        #expect(fast == full, "the fast reader loses a field: \(Self.unsetFields(fast))")
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
