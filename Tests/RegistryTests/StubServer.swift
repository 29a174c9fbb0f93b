import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny in-process HTTP/1.1 server on 127.0.0.1 (ephemeral port) for fault injection: each
/// request is answered by `handler`, and every request is recorded.
final class StubServer: @unchecked Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(String, String)]

        var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
        var query: [String: String] {
            guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
            var out: [String: String] = [:]
            for pair in q.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                out[kv[0]] = kv.count > 1 ? kv[1] : ""
            }
            return out
        }
        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    indirect enum Reply: Sendable {
        case respond(status: Int, headers: [(String, String)], body: [UInt8])
        /// Announces `Content-Length: body.count`, sends the first `sendBytes` bytes, then closes.
        case truncate(status: Int, headers: [(String, String)], body: [UInt8], sendBytes: Int)
        case delayed(milliseconds: Int64, Reply)
        /// Headers and `sendBytes` of `body`, then `dripBytes` one every `dripMilliseconds`, then
        /// nothing (the connection stays open until the server stops).
        case stall(status: Int, headers: [(String, String)], body: [UInt8], sendBytes: Int, dripBytes: Int = 0, dripMilliseconds: Int64 = 0)

        static func status(_ code: Int, _ headers: [(String, String)] = [], body: String = "") -> Reply {
            .respond(status: code, headers: headers, body: Array(body.utf8))
        }
        static func json(_ code: Int, _ body: String, _ headers: [(String, String)] = []) -> Reply {
            .respond(status: code, headers: [("Content-Type", "application/json")] + headers, body: Array(body.utf8))
        }
    }

    typealias Handler = @Sendable (Request) -> Reply

    private let lock = NSLock()
    private var _requests: [Request] = []
    private var _inFlight = 0
    private var _maxInFlight = 0
    private var _handler: Handler
    private var channel: Channel?
    private(set) var port: Int = 0
    /// The address listened on: 127.0.0.1 unless another was asked for.
    let address: String

    var host: String { "\(address):\(port)" }
    var base: String { "http://\(address):\(port)" }

    init(bindingTo address: String = "127.0.0.1", _ handler: @escaping Handler = { _ in .status(404) }) async throws {
        self.address = address
        _handler = handler
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [unowned self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(StubHandler(server: self))
                }
            }
        let ch = try await bootstrap.bind(host: address, port: 0).get()
        channel = ch
        port = ch.localAddress?.port ?? 0
    }

    func setHandler(_ h: @escaping Handler) { lock.withLock { _handler = h } }

    var requests: [Request] { lock.withLock { _requests } }
    var maxInFlight: Int { lock.withLock { _maxInFlight } }
    func requests(matching prefix: String) -> [Request] { requests.filter { $0.path.hasPrefix(prefix) } }
    func requests(containing part: String) -> [Request] { requests.filter { $0.path.contains(part) } }

    func stop() async {
        try? await channel?.close()
    }

    fileprivate func begin(_ r: Request) -> Reply {
        lock.withLock {
            _requests.append(r)
            _inFlight += 1
            _maxInFlight = max(_maxInFlight, _inFlight)
            return _handler
        }(r)
    }

    fileprivate func end() { lock.withLock { _inFlight -= 1 } }
}

private final class StubHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: StubServer
    var head: HTTPRequestHead?

    init(server: StubServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            let req = StubServer.Request(method: "\(h.method)", uri: h.uri, headers: h.headers.map { ($0.name, $0.value) })
            let reply = server.begin(req)
            perform(reply, context: context)
        }
    }

    private func perform(_ reply: StubServer.Reply, context: ChannelHandlerContext) {
        switch reply {
        case .delayed(let ms, let inner):
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) { [self] in
                self.perform(inner, context: bound.value)
            }
        case .respond(let status, let headers, let body):
            var h = HTTPHeaders(headers)
            if !h.contains(name: "Content-Length") && !h.contains(name: "Transfer-Encoding") {
                h.add(name: "Content-Length", value: "\(body.count)")
            }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))), promise: nil)
            if !body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            let server = self.server
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in server.end() }
        case .stall(let status, let headers, let body, let sendBytes, let dripBytes, let dripMilliseconds):
            var h = HTTPHeaders(headers)
            h.replaceOrAdd(name: "Content-Length", value: "\(body.count)")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))), promise: nil)
            context.writeAndFlush(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body.prefix(sendBytes))))), promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            for i in 0..<min(dripBytes, body.count - sendBytes) {
                let byte = body[sendBytes + i]
                context.eventLoop.scheduleTask(in: .milliseconds(dripMilliseconds * Int64(i + 1))) { [self] in
                    let ctx = bound.value
                    guard ctx.channel.isActive else { return }
                    ctx.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ctx.channel.allocator.buffer(bytes: [byte])))), promise: nil)
                }
            }
            server.end()
        case .truncate(let status, let headers, let body, let sendBytes):
            var h = HTTPHeaders(headers)
            h.replaceOrAdd(name: "Content-Length", value: "\(body.count)")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))), promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body.prefix(sendBytes))))), promise: nil)
            let server = self.server
            let channel = context.channel
            context.flush()
            channel.eventLoop.scheduleTask(in: .milliseconds(20)) {
                channel.close(promise: nil)
                server.end()
            }
        }
    }
}
