import ArgumentParser

/// Every udocker command parses with swift-argument-parser.
typealias ParsableCommandBase = ParsableCommand
