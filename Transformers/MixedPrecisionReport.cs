namespace MLNetQuant;

/// <summary>What the mixed-precision choice did (OnnxQuantizationOptions.WeightSizeBudget): the budget, the share of the
/// float weights' bytes the chosen widths take, and which layers went to 4 bits.</summary>
/// <param name="Budget">The budget: the quantized weights' bytes as a share of the float weights' bytes (int8 everywhere
/// is 0.25, int4 everywhere 0.125).</param>
/// <param name="WeightShare">The share the chosen widths take (packed int4, int8; scales not counted).</param>
/// <param name="FourBitLayers">The layers whose weights are 4-bit; the others are 8-bit.</param>
public sealed record MixedPrecisionReport(double Budget, double WeightShare, IReadOnlyList<string> FourBitLayers)
{
    /// <summary>Each weighted layer's sensitivity to 4-bit weights: the model's relative squared output error with that
    /// layer alone at 4 bits minus the error with all at 8 — least sensitive first is the order layers go to 4 bits
    /// (weighed by their size).</summary>
    public IReadOnlyList<LayerSensitivity> Sensitivities { get; init; } = Array.Empty<LayerSensitivity>();
}
