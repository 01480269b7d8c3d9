using System.Collections;
using Google.Protobuf;

namespace Unlearnable.Contracts;

/// <summary>
/// Whether a message carries fields this build of the contract does not know (a newer client's). Built from the
/// message's descriptor, so a field added to the .proto is known here without being listed anywhere.
/// </summary>
public static class UnknownFields
{
    public static bool In(IMessage message)
    {
        // A copy of only the known fields is smaller exactly when the original carried unknown ones.
        var known = (IMessage)Activator.CreateInstance(message.GetType())!;
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
                foreach (DictionaryEntry entry in (IDictionary)value) ((IDictionary)field.Accessor.GetValue(known))[entry.Key] = entry.Value;
            else if (field.IsRepeated)
                foreach (var item in (IList)value) ((IList)field.Accessor.GetValue(known)).Add(item);
            else if (!field.HasPresence || field.Accessor.HasValue(message))
                field.Accessor.SetValue(known, value);
        }
        return known.CalculateSize() != message.CalculateSize();
    }
}
