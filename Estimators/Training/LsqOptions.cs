using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>Learned step size quantization (NNI's LsqQuantizer): learned steps for weights (per tensor or per channel)
/// and activations (per tensor), 2–16 bits, BN folded.</summary>
public sealed class LsqOptions : TrainingQuantizationOptions
{
    internal override QuantAlgorithm CreateAlgorithm() => new LsqAlgorithm();
}
