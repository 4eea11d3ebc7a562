using System.Text.Json;

namespace MLNetQuant.Configuration;

/// <summary>Reads an NNI v2 config_list written as JSON (the Python list of dicts, with JSON quoting), e.g.
/// <c>[{"quant_types": ["weight"], "quant_bits": {"weight": 8}, "op_types": ["Conv2d"]}]</c>, into typed
/// <see cref="QuantConfig"/>s. Unknown keys and malformed values fail with the sub-config index and key. Unlike NNI
/// v2, <c>"exclude": false</c> means "not excluded".</summary>
public static class NniConfigList
{
    private static readonly string[] Keys =
    {
        "quant_types", "quant_bits", "op_types", "op_names", "exclude", "quant_start_step", "quant_scheme", "quant_dtype",
    };

    /// <summary>Parses the JSON text of a config_list.</summary>
    /// <exception cref="QuantConfigException">An unknown key or a value of the wrong form.</exception>
    /// <exception cref="JsonException">Text that is not JSON.</exception>
    public static IReadOnlyList<QuantConfig> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Array)
            throw new ArgumentException("An NNI config_list is a JSON array of objects.", nameof(json));
        return document.RootElement.EnumerateArray().Select(ParseOne).ToList();
    }

    private static QuantConfig ParseOne(JsonElement entry, int index)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new QuantConfigException(index, "config", "each sub-config must be a JSON object.");
        foreach (var property in entry.EnumerateObject())
            if (!Keys.Contains(property.Name))
                throw new QuantConfigException(index, property.Name, $"unknown key; NNI's keys are {string.Join(", ", Keys)}.");

        var (bits, bitsByType) = ScalarOrPerType(entry, index, "quant_bits", e => Int(e, index, "quant_bits"));
        var (scheme, schemeByType) = ScalarOrPerType(entry, index, "quant_scheme", e => SchemeOf(e, index));
        var (dtype, dtypeByType) = ScalarOrPerType(entry, index, "quant_dtype", e => DtypeOf(e, index));
        return new QuantConfig
        {
            QuantTypes = Strings(entry, index, "quant_types").Select(s => QuantTypeOf(s, index, "quant_types")).ToList(),
            OpTypes = Strings(entry, index, "op_types").ToList(),
            OpNames = Strings(entry, index, "op_names").ToList(),
            Exclude = entry.TryGetProperty("exclude", out var exclude) && Bool(exclude, index),
            QuantStartStep = entry.TryGetProperty("quant_start_step", out var step) ? Int(step, index, "quant_start_step") : 0,
            QuantBits = bits,
            QuantBitsByType = bitsByType,
            QuantScheme = scheme,
            QuantSchemeByType = schemeByType,
            QuantDtype = dtype,
            QuantDtypeByType = dtypeByType,
        };
    }

    /// <summary>A key given as one value (for every quant type) or as a {"weight": v, …} object.</summary>
    private static (T? Value, Dictionary<QuantType, T> PerType) ScalarOrPerType<T>(JsonElement entry, int index, string key,
        Func<JsonElement, T> read) where T : struct
    {
        var perType = new Dictionary<QuantType, T>();
        if (!entry.TryGetProperty(key, out var value)) return (null, perType);
        if (value.ValueKind != JsonValueKind.Object) return (read(value), perType);
        foreach (var property in value.EnumerateObject())
            perType[QuantTypeOf(property.Name, index, key)] = read(property.Value);
        return (null, perType);
    }

    private static IEnumerable<string> Strings(JsonElement entry, int index, string key)
    {
        if (!entry.TryGetProperty(key, out var value)) return Array.Empty<string>();
        // NNI's schema wants a list; a bare string is the documented-but-rejected form, refused here too.
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw new QuantConfigException(index, key, "must be a list of strings, e.g. [\"weight\"].");
        return value.EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    private static int Int(JsonElement e, int index, string key) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v)
            ? v
            : throw new QuantConfigException(index, key, $"must be an integer, not {e.GetRawText()}.");

    private static bool Bool(JsonElement e, int index) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new QuantConfigException(index, "exclude", $"must be true or false, not {e.GetRawText()}."),
    };

    private static QuantType QuantTypeOf(string name, int index, string key) => name switch
    {
        "weight" => QuantType.Weight,
        "input" => QuantType.Input,
        "output" => QuantType.Output,
        _ => throw new QuantConfigException(index, key, $"'{name}' is not a quant type; use weight, input or output."),
    };

    private static QuantScheme SchemeOf(JsonElement e, int index) => (e.ValueKind == JsonValueKind.String ? e.GetString() : null) switch
    {
        "per_tensor_affine" => QuantScheme.PerTensorAffine,
        "per_tensor_symmetric" => QuantScheme.PerTensorSymmetric,
        "per_channel_affine" => QuantScheme.PerChannelAffine,
        "per_channel_symmetric" => QuantScheme.PerChannelSymmetric,
        _ => throw new QuantConfigException(index, "quant_scheme", $"unknown scheme {e.GetRawText()}; use per_tensor_affine, " +
            "per_tensor_symmetric, per_channel_affine or per_channel_symmetric."),
    };

    private static QuantDtype DtypeOf(JsonElement e, int index) => (e.ValueKind == JsonValueKind.String ? e.GetString() : null) switch
    {
        "int" => QuantDtype.Int,
        "uint" => QuantDtype.UInt,
        _ => throw new QuantConfigException(index, "quant_dtype", $"unknown dtype {e.GetRawText()}; use int or uint."),
    };
}
