using MLNetQuant.Core;
using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Graph;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>A model with fake quantization: the user's module tree, walked (not traced) in its own order, where each
/// configured layer's input, weight and output pass through its algorithm's quantizer, and conv/linear→BatchNorm
/// pairs are folded when the algorithm folds. In training mode a folded pair runs as PyTorch's QAT ConvBn does: the
/// folded weight (running statistics) is fake-quantized, the conv output is scaled back and the real BatchNorm
/// normalises it with batch statistics and updates its running ones; in evaluation mode the pair is one layer with
/// the folded weight and bias, exactly what the exported model computes.</summary>
public sealed class QuantizedNetwork : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly Dictionary<string, QuantizedLayer> _layers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _foldedBatchNorms = new(StringComparer.Ordinal);
    private readonly List<QuantizedLayer> _ordered = new();

    internal QuantizedNetwork(nn.Module<Tensor, Tensor> model, IReadOnlyList<LayerQuantPlan> plans, QuantAlgorithm algorithm,
        Device device) : base(nameof(QuantizedNetwork))
    {
        if (model is not (Sequential or ResidualBlock or OnnxGraphModule))
            throw new NotSupportedException(
                $"The model's root is a {model.GetType().Name}; MLNetQuant walks models, so the root must be a Sequential " +
                "or ResidualBlock built from the supported layers, or an imported ONNX graph (custom forward methods cannot be followed).");
        this.model = model;
        AlgorithmName = algorithm.Rules.Algorithm;
        RegisterComponents();

        var modules = ModuleTree.NamedModules(model).ToDictionary(m => m.Name, m => m.Module, StringComparer.Ordinal);
        var batchNormAfter = algorithm.FoldsBatchNorm ? FindFoldablePairs(model, "") : new Dictionary<string, (string, BatchNorm)>();
        foreach (var plan in plans)
        {
            var module = modules[plan.Name];
            WeightedLayer.ThrowIfUnsupported(plan.Name, module);
            string? bnName = null;
            BatchNorm? bn = null;
            if (plan.Specs.ContainsKey(QuantType.Weight) && batchNormAfter.TryGetValue(plan.Name, out var pair))
            {
                (bnName, bn) = pair;
                _foldedBatchNorms.Add(bnName);
            }
            var quantizers = new Dictionary<QuantType, TensorQuantizer>();
            foreach (var type in plan.Specs.Keys)
            {
                using var weight = type == QuantType.Weight ? EffectiveWeight(module, bn) : null;
                quantizers[type] = algorithm.Create(plan, type, weight, device);
            }
            var layer = new QuantizedLayer(plan.Name, plan.OpType, module, bnName, bn, quantizers);
            _layers[plan.Name] = layer;
            _ordered.Add(layer);
        }
    }

    /// <summary>The algorithm that quantizes this network (QAT, LSQ …).</summary>
    public string AlgorithmName { get; }

    /// <summary>The float model inside (its parameters are the latent weights the optimizer trains).</summary>
    public nn.Module<Tensor, Tensor> Model => model;

    /// <summary>The quantized layers in named_modules() order.</summary>
    public IReadOnlyList<QuantizedLayer> Layers => _ordered;

    /// <summary>NNI's step counter: 1 before the first optimizer step, incremented after each.</summary>
    public long Step { get; private set; } = 1;

    /// <summary>While true, observers record batches and nothing is quantized (post-training calibration).</summary>
    internal bool Calibrating { get; set; }

    /// <summary>Learned quantization parameters (LSQ steps) that the optimizer must train besides the model's.</summary>
    public IEnumerable<Parameter> QuantizerParameters() =>
        _ordered.SelectMany(l => l.Quantizers.Values).SelectMany(q => q.LearnableParameters);

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Run(model, "", input);

    /// <summary>The output for one tensor per model input: an imported ONNX graph takes its inputs in its own order
    /// (token ids, mask …); any other model takes exactly one.</summary>
    public Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (model is OnnxGraphModule graph) return RunGraph(graph, "", inputs);
        if (inputs.Count != 1) throw new ArgumentException($"The model takes one input; got {inputs.Count}.", nameof(inputs));
        return forward(inputs[0]);
    }

    /// <summary>Advances the step counter and lets quantizers act on the new weights (BNN clips them). Call after
    /// every optimizer step.</summary>
    public void AfterOptimizerStep()
    {
        Step++;
        foreach (var layer in _ordered)
            if (layer.Get(QuantType.Weight) is { } weightQuantizer)
                weightQuantizer.AfterOptimizerStep(WeightedLayer.ParametersOf(layer.Module).Weight);
    }

    /// <summary>Ends calibration: every quantizer turns its observations into parameters.</summary>
    internal void FinishCalibration()
    {
        Calibrating = false;
        foreach (var layer in _ordered)
            foreach (var quantizer in layer.Quantizers.Values)
                quantizer.FinishCalibration();
    }

    private QuantContext Context => new(training, Calibrating, Step);

    private Tensor Run(nn.Module module, string name, Tensor x)
    {
        var layer = name.Length == 0 ? null : _layers.GetValueOrDefault(name);
        if (layer?.Get(QuantType.Input) is { } input) x = input.Quantize(x, Context);
        var y = module switch
        {
            Sequential => RunChildren(module, name, x),
            OnnxGraphModule graph => RunGraph(graph, name, new[] { x }),
            ResidualBlock block => RunResidual(block, name, x),
            _ when layer is not null && (layer.Get(QuantType.Weight) is not null || layer.BatchNorm is not null) => RunWeighted(layer, x),
            _ => ModuleWalker.Leaf(module, x),
        };
        if (layer?.Get(QuantType.Output) is { } output) y = output.Quantize(y, Context);
        return y;
    }

    private Tensor RunChildren(nn.Module container, string name, Tensor x)
    {
        foreach (var (childName, child) in container.named_children())
        {
            var fullName = name.Length == 0 ? childName : $"{name}.{childName}";
            if (_foldedBatchNorms.Contains(fullName)) continue;
            x = Run(child, fullName, x);
        }
        return x;
    }

    // An imported graph's first output, each quantized node through its quantizers.
    private Tensor RunGraph(OnnxGraphModule graph, string name, IReadOnlyList<Tensor> inputs) =>
        graph.Run(inputs, (node, values) => RunNode(Join(name, node.GetName()), node, values))[0];

    // One node of an imported graph: its data input, weight and first output pass through their quantizers.
    private Tensor[] RunNode(string name, OnnxNodeModule node, Tensor?[] inputs)
    {
        var layer = _layers.GetValueOrDefault(name);
        if (layer is null) return node.Execute(inputs);
        var x = inputs[0] ?? throw new InvalidOperationException($"Node '{name}' has no data input to quantize.");
        if (layer.Get(QuantType.Input) is { } input) x = input.Quantize(x, Context);
        var outputs = node.ExecuteWith(inputs, x, layer.Get(QuantType.Weight)?.Quantize(node.Weight, Context));
        if (layer.Get(QuantType.Output) is { } output) outputs[0] = output.Quantize(outputs[0], Context);
        return outputs;
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";

    private Tensor RunResidual(ResidualBlock block, string name, Tensor x) =>
        Run(block.Branch, $"{name}.branch", x).add(Run(block.Shortcut, $"{name}.shortcut", x), CachedScalars.One);

    private Tensor RunWeighted(QuantizedLayer layer, Tensor x)
    {
        var (weight, bias) = WeightedLayer.ParametersOf(layer.Module);
        var weightQuantizer = layer.Get(QuantType.Weight);
        var bn = layer.BatchNorm;
        if (bn is null) return WeightedLayer.Apply(layer.Module, x, weightQuantizer?.Quantize(weight, Context) ?? weight, bias);

        // The fold factor γ/σ is taken without gradient: γ still learns through the real BatchNorm below (training)
        // and the conv's own weight through the straight-through estimator; the division below then costs no
        // reduction in the backward pass.
        Tensor factor;
        using (no_grad()) factor = WeightedLayer.FoldFactor(bn);
        var folded = weight.mul(WeightedLayer.AlongAxis(factor, weight.dim(), 0));
        var quantized = weightQuantizer!.Quantize(folded, Context);
        if (!training) return WeightedLayer.Apply(layer.Module, x, quantized, WeightedLayer.FoldedBias(bn, factor, bias));

        // PyTorch's QAT ConvBn: conv with the folded, quantized weight (and the bias scaled alike, so the conv adds
        // it), scaled back to the raw conv's range, then the real BN normalises with batch statistics.
        var y = WeightedLayer.Apply(layer.Module, x, quantized, bias?.mul(factor));
        return bn.call(y.div(WeightedLayer.AlongAxis(factor, y.dim(), 1)));
    }

    private static Tensor EffectiveWeight(nn.Module module, BatchNorm? bn)
    {
        using var _ = no_grad();
        var weight = WeightedLayer.ParametersOf(module).Weight;
        if (bn is null) return weight.detach().clone();
        using var factor = WeightedLayer.FoldFactor(bn);
        return weight.detach().mul(WeightedLayer.AlongAxis(factor, weight.dim(), 0));
    }

    // A conv or linear layer directly followed, in the same Sequential, by a BatchNorm over its output channels.
    private static Dictionary<string, (string Name, BatchNorm Bn)> FindFoldablePairs(nn.Module container, string prefix)
    {
        var pairs = new Dictionary<string, (string, BatchNorm)>(StringComparer.Ordinal);
        (string Name, nn.Module Module)? previous = null;
        foreach (var (childName, child) in container.named_children())
        {
            var fullName = prefix.Length == 0 ? childName : $"{prefix}.{childName}";
            if (container is Sequential && child is BatchNorm bn && previous is { } p &&
                p.Module is Convolution or Linear && bn.running_mean is not null &&
                WeightedLayer.ParametersOf(p.Module).Weight.shape[0] == bn.num_features)
                pairs[p.Name] = (fullName, bn);
            foreach (var inner in FindFoldablePairs(child, fullName)) pairs[inner.Key] = inner.Value;
            previous = (fullName, child);
        }
        return pairs;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (var quantizer in _ordered.SelectMany(l => l.Quantizers.Values))
                quantizer.Dispose();
        base.Dispose(disposing);
    }
}
