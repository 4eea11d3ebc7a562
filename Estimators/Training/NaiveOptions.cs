using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>Naive weight-only quantization (NNI's NaiveQuantizer, with rounding instead of truncation): needs a model
/// with weights and no data.</summary>
public sealed class NaiveOptions : QuantizationOptions
{
    internal override QuantAlgorithm CreateAlgorithm() => new NaiveAlgorithm();

    internal override bool NeedsData => false;
}
