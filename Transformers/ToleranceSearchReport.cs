namespace MLNetQuant;

/// <summary>One trial of the accuracy-tolerance search: a set of layers left in float and the validation metric the
/// model reached with it.</summary>
/// <param name="Trial">1 for the first model evaluated.</param>
/// <param name="FloatLayers">The ONNX nodes left in float (besides those the options exclude).</param>
/// <param name="Metric">The validation metric of that model.</param>
/// <param name="Met">Whether it is within the tolerance.</param>
public sealed record ToleranceTrial(int Trial, IReadOnlyList<string> FloatLayers, double Metric, bool Met);

/// <summary>How much one layer costs: the model's output error (relative squared error of the score output against the
/// float model's) with that layer alone quantized (tolerance search) or alone at 4 bits (mixed precision, minus the
/// error with all at 8). Larger: more sensitive.</summary>
/// <param name="Node">The ONNX node.</param>
/// <param name="OpType">Its op type.</param>
/// <param name="Sensitivity">The error it accounts for.</param>
public sealed record LayerSensitivity(string Node, string OpType, double Sensitivity);

/// <summary>The trail of an accuracy-tolerance search (OnnxQuantizationOptions.AccuracyTolerance): the float baseline,
/// the layers ranked by sensitivity, every trial, and what was kept.</summary>
/// <param name="Metric">The metric's name.</param>
/// <param name="HigherIsBetter">Whether larger metric values are better (accuracy) or worse (RMSE).</param>
/// <param name="FloatMetric">The float model's metric on the validation data.</param>
/// <param name="Tolerance">The tolerance as configured ("0.003 absolute", "1 % relative").</param>
/// <param name="Limit">The worst metric within the tolerance.</param>
/// <param name="Met">Whether the kept model is within the tolerance.</param>
/// <param name="FloatLayers">The layers the kept model leaves in float.</param>
public sealed record ToleranceSearchReport(string Metric, bool HigherIsBetter, double FloatMetric, string Tolerance, double Limit, bool Met,
    IReadOnlyList<string> FloatLayers)
{
    /// <summary>The kept model's metric.</summary>
    public double QuantizedMetric { get; init; }

    /// <summary>Every trial, in order.</summary>
    public IReadOnlyList<ToleranceTrial> Trials { get; init; } = Array.Empty<ToleranceTrial>();

    /// <summary>The layers by sensitivity, most sensitive first (empty when the fully quantized model met the tolerance).</summary>
    public IReadOnlyList<LayerSensitivity> Sensitivities { get; init; } = Array.Empty<LayerSensitivity>();
}
