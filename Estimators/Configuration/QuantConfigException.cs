namespace MLNetQuant.Configuration;

/// <summary>A sub-config is invalid. <see cref="ConfigIndex"/> and <see cref="Key"/> (NNI's key name, e.g.
/// <c>quant_bits</c>) say where; the message says why.</summary>
public sealed class QuantConfigException : ArgumentException
{
    /// <summary>Creates the exception for sub-config <paramref name="configIndex"/>, key <paramref name="key"/>.</summary>
    public QuantConfigException(int configIndex, string key, string reason)
        : base($"config[{configIndex}].{key}: {reason}", "config")
    {
        ConfigIndex = configIndex;
        Key = key;
    }

    /// <summary>Position of the faulty sub-config in the list.</summary>
    public int ConfigIndex { get; }

    /// <summary>The faulty key, in NNI's spelling (quant_types, quant_bits, op_types, op_names, exclude,
    /// quant_start_step, quant_scheme, quant_dtype).</summary>
    public string Key { get; }
}
