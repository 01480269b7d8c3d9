using Google.Protobuf;
using Grpc.Core;

namespace Unlearnable.Sidecar.Services;

/// <summary>
/// Binds the service with request parsers that answer a malformed message (invalid UTF-8 in a
/// string field, a broken encoding) with INVALID_ARGUMENT and the parser's reason, instead of
/// the UNKNOWN status a throwing deserialiser would otherwise produce.
/// </summary>
sealed class StrictParsingBinder(ServiceBinderBase inner) : ServiceBinderBase
{
    static Method<TRequest, TResponse> Strict<TRequest, TResponse>(Method<TRequest, TResponse> method) where TRequest : class where TResponse : class =>
        new(method.Type, method.ServiceName, method.Name, Marshallers.Create(method.RequestMarshaller.ContextualSerializer, context =>
        {
            try { return method.RequestMarshaller.ContextualDeserializer(context); }
            catch (InvalidProtocolBufferException e)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"the {typeof(TRequest).Name} message is malformed: {e.Message}"));
            }
        }), method.ResponseMarshaller);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Strict(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Strict(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Strict(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Strict(method), handler);
}
