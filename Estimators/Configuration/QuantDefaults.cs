namespace MLNetQuant.Configuration;

/// <summary>Scheme and signedness used where a sub-config names none: an explicit object passed to an algorithm, in
/// place of NNI's process-global <c>set_quant_scheme_dtype</c>. The defaults are what ONNX Runtime runs fastest on x86:
/// int8 symmetric per-channel weights and uint8 per-tensor affine activations.</summary>
public sealed record QuantDefaults
{
    /// <summary>Weights: int, per-channel symmetric.</summary>
    public (QuantScheme Scheme, QuantDtype Dtype) Weight { get; init; } = (QuantScheme.PerChannelSymmetric, QuantDtype.Int);

    /// <summary>Layer inputs: uint, per-tensor affine.</summary>
    public (QuantScheme Scheme, QuantDtype Dtype) Input { get; init; } = (QuantScheme.PerTensorAffine, QuantDtype.UInt);

    /// <summary>Layer outputs: uint, per-tensor affine.</summary>
    public (QuantScheme Scheme, QuantDtype Dtype) Output { get; init; } = (QuantScheme.PerTensorAffine, QuantDtype.UInt);

    /// <summary>The shared default instance.</summary>
    public static QuantDefaults OnnxRuntimeFriendly { get; } = new();

    /// <summary>The default scheme and dtype of <paramref name="type"/>.</summary>
    public (QuantScheme Scheme, QuantDtype Dtype) For(QuantType type) => type switch
    {
        QuantType.Weight => Weight,
        QuantType.Input => Input,
        QuantType.Output => Output,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown quant type."),
    };
}
