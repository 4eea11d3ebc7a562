using MLNetQuant.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>Runs a model of supported layers by walking it (Sequential in order, ResidualBlock as branch + shortcut),
/// the same way <see cref="QuantizedNetwork"/> does but without quantization. Walking, rather than calling the root,
/// also sidesteps two TorchSharp 0.107 defects: <c>Hardtanh.forward</c> returns its input unchanged (no clamping),
/// and <c>Sequential.forward</c> disposes intermediate results, which breaks when a layer returns its input.</summary>
internal static class ModuleWalker
{
    /// <summary>The float output of <paramref name="module"/> for <paramref name="x"/>; <paramref name="visit"/>, when
    /// given, sees every leaf's dotted name, input and output.</summary>
    public static Tensor Run(nn.Module module, Tensor x, string name = "", Action<string, Tensor, Tensor>? visit = null)
    {
        switch (module)
        {
            case Sequential:
                foreach (var (childName, child) in module.named_children()) x = Run(child, x, Join(name, childName), visit);
                return x;
            case Graph.OnnxGraphModule graph:
                return RunGraph(graph, new[] { x }, name, visit);
            case ResidualBlock block:
                return Run(block.Branch, x, Join(name, "branch"), visit).add(Run(block.Shortcut, x, Join(name, "shortcut"), visit), CachedScalars.One);
            default:
                var y = Leaf(module, x);
                visit?.Invoke(name, x, y);
                return y;
        }
    }

    /// <summary>The same for one tensor per model input (an imported ONNX graph may take several).</summary>
    public static Tensor Run(nn.Module module, IReadOnlyList<Tensor> inputs, Action<string, Tensor, Tensor>? visit = null)
    {
        if (inputs.Count == 1) return Run(module, inputs[0], "", visit);
        if (module is not Graph.OnnxGraphModule graph)
            throw new ArgumentException($"A {module.GetType().Name} takes one input; got {inputs.Count}.", nameof(inputs));
        return RunGraph(graph, inputs, "", visit);
    }

    // An imported graph's first output; visit sees each node's first data input and first output.
    private static Tensor RunGraph(Graph.OnnxGraphModule graph, IReadOnlyList<Tensor> inputs, string name, Action<string, Tensor, Tensor>? visit) =>
        graph.Run(inputs, visit is null ? null : (node, values) =>
        {
            var outputs = node.Execute(values);
            if (values.Length > 0 && values[0] is { } first) visit(Join(name, node.GetName()), first, outputs[0]);
            return outputs;
        })[0];

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";

    /// <summary>One leaf layer's forward, with Hardtanh computed as the clamp it is.</summary>
    public static Tensor Leaf(nn.Module module, Tensor x) => module switch
    {
        Hardtanh h => x.clamp(CachedScalars.Of(h.min_val), CachedScalars.Of(h.max_val)),
        nn.Module<Tensor, Tensor> leaf => leaf.call(x),
        _ => throw new NotSupportedException($"{module.GetType().Name} is not a tensor-to-tensor layer."),
    };
}
