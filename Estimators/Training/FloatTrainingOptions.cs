using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>Plain float training with the same loop, data reading and progress as the quantizers: the baseline a
/// model is trained with before post-training quantization, and the "same extra epochs" control that fine-tuning
/// algorithms are compared against. Quantizes nothing (the config is ignored).</summary>
public sealed class FloatTrainingOptions : TrainingQuantizationOptions
{
    internal override QuantAlgorithm CreateAlgorithm() => new FloatAlgorithm();

    internal override bool UsesConfig => false;

    private sealed class FloatAlgorithm : QuantAlgorithm
    {
        public override QuantAlgorithmRules Rules { get; } = QuantAlgorithmRules.Qat with { Algorithm = "Float" };

        public override bool FoldsBatchNorm => false;

        public override IReadOnlyList<QuantConfig> DefaultConfig { get; } = new[]
        {
            new QuantConfig { OpTypes = { "default" }, Exclude = true },
        };

        public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
            throw new InvalidOperationException("Float training quantizes nothing.");
    }
}
