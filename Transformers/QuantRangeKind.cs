namespace MLNetQuant;

/// <summary>Which part of a b-bit integer grid is used.</summary>
public enum QuantRangeKind
{
    /// <summary>The whole grid: int [-2^(b-1), 2^(b-1)-1], uint [0, 2^b-1] (PyTorch's default).</summary>
    Full,

    /// <summary>The grid without its most negative value: int [-(2^(b-1)-1), 2^(b-1)-1] (NNI v2, ORT symmetric weights),
    /// uint [0, 2^b-2] (ORT's symmetric uint).</summary>
    Narrow,

    /// <summary>One bit less, as PyTorch's reduce_range: int [-2^(b-2), 2^(b-2)-1], uint [0, 2^(b-1)-1]. Exists for
    /// x86 kernels whose 16-bit accumulation (vpmaddubsw) could otherwise saturate.</summary>
    ReduceRange,
}
