namespace MLNetQuant.Configuration;

/// <summary>What an algorithm accepts in its config: quant types, bit widths and the optional keys. Checked before
/// any training, so a bad config fails in milliseconds with the sub-config and key at fault.</summary>
/// <param name="Algorithm">Name used in messages.</param>
/// <param name="QuantTypes">Quant types the algorithm can apply.</param>
/// <param name="MinBits">Smallest bit width.</param>
/// <param name="MaxBits">Largest bit width.</param>
/// <param name="AllowsQuantStartStep">Whether quant_start_step is meaningful.</param>
/// <param name="AllowsSchemeAndDtype">Whether quant_scheme and quant_dtype may be set.</param>
public sealed record QuantAlgorithmRules(
    string Algorithm,
    IReadOnlySet<QuantType> QuantTypes,
    int MinBits,
    int MaxBits,
    bool AllowsQuantStartStep,
    bool AllowsSchemeAndDtype)
{
    private static readonly IReadOnlySet<QuantType> All = new HashSet<QuantType> { QuantType.Weight, QuantType.Input, QuantType.Output };

    /// <summary>Naive: weight-only rounding, no training.</summary>
    public static QuantAlgorithmRules Naive { get; } =
        new("Naive", new HashSet<QuantType> { QuantType.Weight }, 2, 16, false, true);

    /// <summary>QAT: every quant type, EMA activation ranges, quant start step.</summary>
    public static QuantAlgorithmRules Qat { get; } = new("QAT", All, 2, 16, true, true);

    /// <summary>DoReFa: weights (tanh transform), outputs as an option beyond NNI v2.</summary>
    public static QuantAlgorithmRules DoReFa { get; } =
        new("DoReFa", new HashSet<QuantType> { QuantType.Weight, QuantType.Output }, 1, 16, false, false);

    /// <summary>BNN: 1-bit weights and outputs; weights of layers kept out of binarization (first and last, by
    /// default) up to 8 bits.</summary>
    public static QuantAlgorithmRules Bnn { get; } =
        new("BNN", new HashSet<QuantType> { QuantType.Weight, QuantType.Output }, 1, 8, false, false);

    /// <summary>LSQ: learned steps for every quant type.</summary>
    public static QuantAlgorithmRules Lsq { get; } = new("LSQ", All, 2, 16, false, true);

    /// <summary>Observer: post-training calibration, 2–8 bits.</summary>
    public static QuantAlgorithmRules Observer { get; } = new("Observer", All, 2, 8, false, true);
}
