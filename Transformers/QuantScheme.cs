namespace MLNetQuant;

/// <summary>How scales and zero-points are shared and chosen: one per tensor or one per channel, with a zero-point
/// fitted to the range (affine) or fixed at the grid's middle (symmetric). Same four schemes as PyTorch and NNI.</summary>
public enum QuantScheme
{
    /// <summary>One scale and zero-point for the whole tensor; the zero-point maps the observed minimum to qmin.</summary>
    PerTensorAffine,

    /// <summary>One scale for the whole tensor from its largest magnitude; zero-point 0 (int) or the grid middle (uint).</summary>
    PerTensorSymmetric,

    /// <summary>One scale and zero-point per channel (weights: output channel; activations: dim 1).</summary>
    PerChannelAffine,

    /// <summary>One symmetric scale per channel; the ONNX Runtime-friendly choice for weights.</summary>
    PerChannelSymmetric,
}

/// <summary>Queries on <see cref="QuantScheme"/>.</summary>
public static class QuantSchemeExtensions
{
    /// <summary>True for the two per-channel schemes.</summary>
    public static bool IsPerChannel(this QuantScheme scheme) =>
        scheme is QuantScheme.PerChannelAffine or QuantScheme.PerChannelSymmetric;

    /// <summary>True for the two symmetric schemes.</summary>
    public static bool IsSymmetric(this QuantScheme scheme) =>
        scheme is QuantScheme.PerTensorSymmetric or QuantScheme.PerChannelSymmetric;
}
