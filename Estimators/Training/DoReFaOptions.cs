using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>DoReFa-Net (NNI's DoReFaQuantizer): k-bit tanh-normalised weights, and k-bit activations in [0, 1] when
/// a sub-config lists output.</summary>
public sealed class DoReFaOptions : TrainingQuantizationOptions
{
    internal override QuantAlgorithm CreateAlgorithm() => new DoReFaAlgorithm();
}
