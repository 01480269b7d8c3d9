using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace Unlearnable.Hosting;

/// <summary>Errors both hosts answer with, built one way.</summary>
public static class GrpcErrors
{
    /// <summary>INVALID_ARGUMENT with the message, plus a google.rpc.BadRequest naming each field at fault (for clients that read rich errors).</summary>
    public static RpcException InvalidArgument(string message, IEnumerable<(string Field, string Problem)> violations) => new Google.Rpc.Status
    {
        Code = (int)Code.InvalidArgument,
        Message = message,
        Details = { Any.Pack(new BadRequest { FieldViolations = { violations.Select(v => new BadRequest.Types.FieldViolation { Field = v.Field, Description = v.Problem }) } }) },
    }.ToRpcException();
}
