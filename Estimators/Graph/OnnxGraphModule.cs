using System.Text;
using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Graph;

/// <summary>Runs the node of one <see cref="OnnxGraphModule"/> on its inputs: the hook through which quantizers see
/// every node's data input, weight and output.</summary>
internal delegate Tensor[] OnnxNodeRunner(OnnxNodeModule node, Tensor?[] inputs);

/// <summary>An imported ONNX graph (see <see cref="OnnxImporter"/>) as a trainable TorchSharp module: nodes run op by
/// op in the graph's order (<see cref="OnnxOps"/>), learnable initializers are parameters and the others buffers, so
/// the same graph that ONNX Runtime runs is fine-tuned, quantized and written back with Q/DQ. Learnable are the float
/// weights and biases of Conv/ConvTranspose/Gemm/MatMul, Einsum's constant operands, embedding tables (Gather data),
/// normalisation scales and shifts, PRelu's slopes, and the non-scalar constants of Add/Sub/Mul/Div (biases,
/// LayerNorm's γ and β after decomposition); scalars, shapes and indices stay constant. BatchNormalization was folded at import: fine-tuning an inference graph keeps
/// the statistics it shipped with.</summary>
internal sealed class OnnxGraphModule : nn.Module<Tensor, Tensor>
{
    private static readonly HashSet<string> Arithmetic = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div" };

    private readonly Dictionary<string, string> _registered = new(StringComparer.Ordinal);
    private readonly HashSet<string> _learnable = new(StringComparer.Ordinal);
    private readonly List<OnnxNodeModule> _nodes = new();
    private readonly Dictionary<string, int> _lastUse = new(StringComparer.Ordinal);

    /// <summary>Builds the module from <paramref name="model"/>, already imported.</summary>
    /// <exception cref="NotSupportedException">A node of another domain or an op the executor lacks, named.</exception>
    public OnnxGraphModule(ModelProto model, string source) : base(nameof(OnnxGraphModule))
    {
        Source = model.Clone();
        var graph = Source.Graph;
        var opset = OpsetUpgrade.OpsetOf(model);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        InputNames = InputBinding.GraphInputs(model).Select(i => i.Name).ToArray();
        OutputNames = graph.Output.Select(o => o.Name).ToArray();
        foreach (var node in graph.Node)
        {
            if (node.Domain is not ("" or "ai.onnx") || !OnnxOps.Supported.Contains(node.OpType))
                throw new NotSupportedException($"{source}: node '{node.Name}' ({(node.Domain.Length > 0 ? node.Domain + "." : "")}{node.OpType}, " +
                    $"opset {opset}) has no TorchSharp implementation here, so the graph cannot be trained; supported: {string.Join(", ", OnnxOps.Supported.Order())}.");
        }

        var learnable = LearnableInitializers(graph, initializers);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var initializer in graph.Initializer)
        {
            var registered = Sanitize("const_" + initializer.Name, names);
            _registered[initializer.Name] = registered;
            var value = OnnxToTorch.Tensor(initializer);
            if (learnable.Contains(initializer.Name))
            {
                register_parameter(registered, new Parameter(value, requires_grad: true));
                _learnable.Add(initializer.Name);
            }
            else register_buffer(registered, value);
        }
        for (var i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            var weighted = OnnxOps.Weighted.Contains(node.OpType) && node.Input.Count > 1 && _learnable.Contains(node.Input[1]) &&
                initializers[node.Input[1]].Dims.Count >= 2 && (node.OpType != "Gemm" || GraphEditor.Int(node, "transA", 0) == 0);
            var bias = weighted && node.OpType != "MatMul" && node.Input.Count > 2 && _learnable.Contains(node.Input[2]) ? node.Input[2] : null;
            var module = new OnnxNodeModule(Sanitize(node.Name, names), node, opset, weighted ? node.Input[1] : null, bias, Constant);
            register_module(module.GetName(), module);
            _nodes.Add(module);
            foreach (var input in node.Input.Where(n => n.Length > 0)) _lastUse[input] = i;
        }
        foreach (var output in OutputNames) _lastUse[output] = int.MaxValue;
    }

    /// <summary>The imported float graph this module runs (its initializers hold the values it was built with; see
    /// <see cref="WithCurrentValues"/>).</summary>
    public ModelProto Source { get; }

    /// <summary>A copy of <see cref="Source"/> whose learnable initializers hold the parameters' current values (the
    /// fine-tuned float model).</summary>
    public ModelProto WithCurrentValues()
    {
        var model = Source.Clone();
        using var _ = no_grad();
        for (var i = 0; i < model.Graph.Initializer.Count; i++)
        {
            var initializer = model.Graph.Initializer[i];
            if (!_learnable.Contains(initializer.Name)) continue;
            float[] values;
            using (var cpu = Constant(initializer.Name).cpu())
            using (var contiguous = cpu.contiguous())
                values = contiguous.data<float>().ToArray();
            model.Graph.Initializer[i] = OnnxTensors.FromFloats(initializer.Name, values, initializer.Dims.ToArray());
        }
        return model;
    }

    /// <summary>The graph inputs fed at run time, in order.</summary>
    public IReadOnlyList<string> InputNames { get; }

    /// <summary>The graph outputs, in order.</summary>
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>The nodes in execution order.</summary>
    public IReadOnlyList<OnnxNodeModule> Nodes => _nodes;

    /// <summary>The current value of initializer <paramref name="onnxName"/>: its parameter (learnable) or buffer, on
    /// the module's device.</summary>
    public Tensor Constant(string onnxName)
    {
        var registered = _registered[onnxName];
        return _learnable.Contains(onnxName) ? get_parameter(registered)! : get_buffer(registered)!;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (InputNames.Count != 1 || OutputNames.Count != 1)
            throw new NotSupportedException($"The graph has {InputNames.Count} inputs and {OutputNames.Count} outputs; call Run with all of them.");
        return Run(new[] { input })[0];
    }

    /// <summary>Runs the graph on <paramref name="inputs"/> (one per <see cref="InputNames"/>) and returns its outputs.
    /// <paramref name="runner"/>, when given, computes each node (quantization hooks in); without gradient, each
    /// intermediate tensor is freed after its last reader.</summary>
    public Tensor[] Run(IReadOnlyList<Tensor> inputs, OnnxNodeRunner? runner = null)
    {
        if (inputs.Count != InputNames.Count)
            throw new ArgumentException($"The graph takes {InputNames.Count} inputs ({string.Join(", ", InputNames)}); got {inputs.Count}.", nameof(inputs));
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Count; i++) values[InputNames[i]] = inputs[i];
        var release = !is_grad_enabled();
        for (var i = 0; i < _nodes.Count; i++)
        {
            var node = _nodes[i];
            var arguments = node.Node.Input.Select(name => name.Length == 0 ? null
                : values.TryGetValue(name, out var value) ? value
                : _registered.ContainsKey(name) ? Constant(name)
                : throw new InvalidOperationException($"Node '{node.Node.Name}' reads '{name}', which nothing computed before it.")).ToArray();
            Tensor[] outputs;
            // A scope per node holds every temporary of its ops (a chained call's intermediate is otherwise unreachable
            // during the next native call, and its finalizer can free it mid-call) and frees them when the node is done;
            // the outputs move out to the caller's scope.
            using (var scope = NewDisposeScope())
            {
                outputs = runner is null ? node.Execute(arguments) : runner(node, arguments);
                foreach (var output in outputs) output.MoveToOuterDisposeScope();
            }
            for (var k = 0; k < node.Node.Output.Count && k < outputs.Length; k++)
                if (node.Node.Output[k].Length > 0) values[node.Node.Output[k]] = outputs[k];
            if (!release) continue;
            foreach (var name in node.Node.Input.Distinct())
                if (values.TryGetValue(name, out var spent) && _lastUse.GetValueOrDefault(name) == i && !inputs.Contains(spent))
                {
                    spent.Dispose();
                    values.Remove(name);
                }
        }
        return OutputNames.Select(name => values.TryGetValue(name, out var output) ? output
            : _registered.ContainsKey(name) ? Constant(name).alias()
            : throw new InvalidOperationException($"Graph output '{name}' is computed by no node.")).ToArray();
    }

    // Float initializers that training should update (see the class summary).
    private static HashSet<string> LearnableInitializers(GraphProto graph, Dictionary<string, TensorProto> initializers)
    {
        var learnable = new HashSet<string>(StringComparer.Ordinal);
        void Take(NodeProto node, int index)
        {
            if (index < node.Input.Count && initializers.TryGetValue(node.Input[index], out var tensor) && tensor.DataType == OnnxTensors.Float &&
                OnnxTensors.ElementCount(tensor) > 1)
                learnable.Add(tensor.Name);
        }
        foreach (var node in graph.Node)
        {
            switch (node.OpType)
            {
                case "Conv" or "ConvTranspose" or "Gemm":
                    Take(node, 1);
                    Take(node, 2);
                    break;
                case "MatMul" or "Gather":
                    Take(node, node.OpType == "Gather" ? 0 : 1);
                    break;
                case "LayerNormalization" or "BatchNormalization" or "InstanceNormalization" or "GroupNormalization":
                    Take(node, 1);
                    Take(node, 2);
                    break;
                case "PRelu":
                    Take(node, 1);
                    break;
                case "Einsum":
                    for (var i = 0; i < node.Input.Count; i++) Take(node, i);
                    break;
                case var op when Arithmetic.Contains(op):
                    Take(node, 0);
                    Take(node, 1);
                    break;
            }
        }
        return learnable;
    }

    // Module and parameter names may not hold '.'; the rest of the node name is kept readable (config op_names use it).
    private static string Sanitize(string name, HashSet<string> taken)
    {
        var builder = new StringBuilder();
        foreach (var c in name.Trim('/')) builder.Append(char.IsLetterOrDigit(c) || c == '_' ? c : '_');
        var clean = builder.Length == 0 ? "node" : builder.ToString();
        var unique = clean;
        for (var i = 1; !taken.Add(unique); i++) unique = $"{clean}_{i}";
        return unique;
    }
}
