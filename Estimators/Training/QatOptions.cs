using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>Quantization-aware training (NNI's QAT_Quantizer): any of weight/input/output at 2–16 bits, all four
/// schemes and both dtypes, quant start step per sub-config, BN folded.</summary>
public sealed class QatOptions : TrainingQuantizationOptions
{
    internal override QuantAlgorithm CreateAlgorithm() => new QatAlgorithm();
}
