using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Unlearnable.Contracts;
using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// Every field of the contract counts as known, whichever message it is in and however it was added; only a field
/// the contract does not have counts as unknown (a request carrying one is refused, so a new field must never be).
/// </summary>
public class ContractFieldTests
{
    public static TheoryData<string> Messages()
    {
        var data = new TheoryData<string>();
        foreach (var file in new[] { ProtectionReflection.Descriptor, EvaluationReflection.Descriptor })
            foreach (var message in All(file.MessageTypes)) data.Add(message.FullName);
        return data;
    }

    static IEnumerable<MessageDescriptor> All(IEnumerable<MessageDescriptor> messages) =>
        messages.SelectMany(m => All(m.NestedTypes).Prepend(m)).Where(m => m.ClrType is not null && !m.IsMapEntry);

    static MessageDescriptor Find(string name) =>
        All(ProtectionReflection.Descriptor.MessageTypes.Concat(EvaluationReflection.Descriptor.MessageTypes)).Single(m => m.FullName == name);

    [Theory]
    [MemberData(nameof(Messages))]
    public void EveryFieldSetIsKnownAndAnAddedOneIsNot(string name)
    {
        var descriptor = Find(name);
        var message = Filled(descriptor);
        Assert.False(UnknownFields.In(message), $"{name} with every field set counted as carrying unknown fields");

        // The same bytes plus field 999 (a varint), as a newer client would send it.
        var bytes = message.ToByteArray().Concat(new byte[] { 0xB8, 0x3E, 0x01 }).ToArray();
        var withUnknown = descriptor.Parser.ParseFrom(bytes);
        Assert.True(UnknownFields.In(withUnknown), $"{name} with field 999 did not count as carrying an unknown field");
    }

    // Every field at a value other than its default, so each one is on the wire.
    static IMessage Filled(MessageDescriptor descriptor, int depth = 0)
    {
        var message = (IMessage)Activator.CreateInstance(descriptor.ClrType)!;
        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            if (field.IsMap || field.RealContainingOneof is { } oneof && oneof.Fields[0] != field) continue;   // one member per oneof
            object? value = field.FieldType switch
            {
                FieldType.String => "x",
                FieldType.Bytes => ByteString.CopyFrom(1, 2, 3),
                FieldType.Bool => true,
                FieldType.Double => 1.5,
                FieldType.Float => 1.5f,
                FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => 3,
                FieldType.UInt32 or FieldType.Fixed32 => 3u,
                FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => 3L,
                FieldType.UInt64 or FieldType.Fixed64 => 3UL,
                FieldType.Enum => Enum.ToObject(field.EnumType.ClrType, field.EnumType.Values.Select(v => v.Number).DefaultIfEmpty(0).Max()),
                FieldType.Message when depth < 3 => Filled(field.MessageType, depth + 1),
                _ => null,
            };
            if (value is null) continue;
            if (field.IsRepeated) ((IList)field.Accessor.GetValue(message)).Add(value);
            else field.Accessor.SetValue(message, value);
        }
        return message;
    }
}
