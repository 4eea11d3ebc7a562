using MLNetQuant.Modeling;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>The outcome of <see cref="QuantizationRunner.Run(Microsoft.ML.MLContext, QuantizationOptions, Microsoft.ML.IDataView?)"/>: the fake-quantized network (in evaluation mode), the
/// device it lives on, and the per-epoch history (empty for Naive and Observer).</summary>
/// <param name="Network">The network, its quantization parameters set.</param>
/// <param name="Device">Where it runs.</param>
/// <param name="History">One summary per training epoch.</param>
/// <param name="IsClassification">Whether the label made it a classifier (else a regressor).</param>
/// <param name="Outputs">The model's output size (classes, or 1 for regression).</param>
public sealed record QuantizationRun(QuantizedNetwork Network, Device Device, IReadOnlyList<EpochSummary> History,
    bool IsClassification, long Outputs)
{
    /// <summary>The inputs the network read (and the exported model reads).</summary>
    internal ModelInputs Inputs { get; init; } = null!;
}
