using MLNetQuant.Configuration;
using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Binarized neural networks (Courbariaux/Hubara et al. 2016): ±1 weights and activations with
/// straight-through gradients; latent weights clipped to [−1, 1] after every optimizer step. Layers configured with
/// more than 1 weight bit (the default for the first and last weighted layers, as in NNI's example and the usual
/// recipe: binarizing them costs the most accuracy) get min/max-rounded weights instead.</summary>
internal sealed class BnnAlgorithm : QuantAlgorithm
{
    private readonly bool _clipLatentWeights;

    public BnnAlgorithm(bool clipLatentWeights) => _clipLatentWeights = clipLatentWeights;

    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Bnn;

    public override bool FoldsBatchNorm => false;

    /// <summary>Without a model: 1-bit weights everywhere and 1-bit Hardtanh outputs (<see cref="DefaultConfigFor"/>
    /// refines it per model).</summary>
    public override IReadOnlyList<QuantConfig> DefaultConfig => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "default" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpTypes = { "Hardtanh" } },
    };

    /// <summary>8-bit weights on the first and last weighted layers, 1-bit weights on the others, 1-bit Hardtanh outputs.</summary>
    public override IReadOnlyList<QuantConfig> DefaultConfigFor(nn.Module model)
    {
        var weighted = ModuleTree.NamedModules(model)
            .Where(m => SupportedLayers.HasWeight(m.Module))
            .Select(m => m.Name).ToList();
        var configs = new List<QuantConfig>
        {
            new() { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "default" } },
            new() { QuantTypes = { QuantType.Output }, QuantBits = 1, OpTypes = { "Hardtanh" } },
        };
        if (weighted.Count > 0)
        {
            var edges = new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } };
            foreach (var name in new[] { weighted[0], weighted[^1] }.Distinct()) edges.OpNames.Add(name);
            configs.Add(edges);
        }
        return configs;
    }

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device)
    {
        var spec = plan.Specs[type];
        if (type == QuantType.Weight)
            return spec.Bits == 1 ? new BinaryWeightQuantizer(spec, _clipLatentWeights) : new MinMaxWeightQuantizer(spec);
        if (spec.Bits != 1)
            throw new QuantConfigException(plan.ConfigIndex, "quant_bits",
                $"BNN binarizes activations: the {type} of '{plan.Name}' must be 1 bit, not {spec.Bits}.");
        return new BinaryActivationQuantizer(type, spec);
    }
}
