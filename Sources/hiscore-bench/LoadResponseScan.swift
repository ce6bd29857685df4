/// The top-level fields of a `Response` frame, read in place (no protobuf-c decode): what both
/// load generators (server and streams) need to match a reply to its call and check it.
struct LoadResponseScan {
    var callID: UInt64 = 0
    var statusCode: UInt64 = 0
    var statusMessage: Range<Int>? = nil
    /// The `oneof result` field number (0 = none) and its body.
    var resultField = 0
    var resultBody = 0..<0

    init(_ body: UnsafeRawBufferPointer) throws(LoadProtocolError) {
        var reader = LoadProtoReader(body)
        while !reader.atEnd {
            guard let field = reader.field() else { throw LoadProtocolError("undecodable Response frame") }
            switch field.number {
            case 1 where field.wireType == 0:
                callID = field.value
            case 2 where field.wireType == 2:
                var status = LoadProtoReader(body, from: field.body.lowerBound, to: field.body.upperBound)
                while !status.atEnd {
                    guard let inner = status.field() else { throw LoadProtocolError("undecodable Status") }
                    if inner.number == 1, inner.wireType == 0 { statusCode = inner.value }
                    if inner.number == 2, inner.wireType == 2 { statusMessage = inner.body }
                }
            case 9...27 where field.wireType == 2:
                resultField = field.number
                resultBody = field.body
            default:
                break
            }
        }
    }
}
