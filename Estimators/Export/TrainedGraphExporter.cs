using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Graph;
using MLNetQuant.Modeling;
using MLNetQuant.Onnx;
using Onnx;
using ElementType = MLNetQuant.Onnx.OnnxGraphBuilder.ElementType;

namespace MLNetQuant.Export;

/// <summary>Writes a fine-tuned imported ONNX graph (a <see cref="QuantizedNetwork"/> over an
/// <see cref="OnnxGraphModule"/>) back as the same graph with its trained values and Q/DQ: the quantizers' grids
/// become <see cref="QdqAnnotations"/> and <see cref="QdqGraphRewriter"/> writes them, as it does for post-training
/// quantization. The columns are the training estimators': the features column (a flat float vector, reshaped to the
/// model's input) — or, for a model that read its graph inputs from their own columns, those inputs renamed to their
/// columns — then Score (softmax of the model's output for classifiers, the output itself for regressors) and
/// PredictedLabelIndex.</summary>
internal static class TrainedGraphExporter
{
    private static readonly QuantContext Evaluation = new(Training: false, Calibrating: false, Step: long.MaxValue);

    public static ExportedModel Export(QuantizedNetwork network, OnnxGraphModule graph, Training.ModelInputs inputs, long outputs,
        bool classification, string scoreColumn)
    {
        network.eval();
        using var noGrad = TorchSharp.torch.no_grad();
        var model = graph.WithCurrentValues();
        var annotations = Annotate(network, graph);
        var onnx = new OnnxGraphBuilder(model.Graph);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);

        var output = graph.OutputNames.Single();
        if (onnx.IsTaken(scoreColumn) || onnx.IsTaken(QdqExporter.PredictedIndexColumn))
            throw new NotSupportedException($"The model already has a tensor named '{scoreColumn}' or '{QdqExporter.PredictedIndexColumn}'; " +
                "the exported model writes those columns, so choose another ScoreColumnName (or rename the model's tensor).");
        if (inputs.IsFlat) ReadFlatFeatures(model, onnx, graph.InputNames.Single(), inputs.Bindings[0], names);
        else InputBinding.RenameToColumns(model, onnx, inputs.Bindings, names);

        QdqGraphRewriter.Rewrite(model, onnx, annotations, names);

        var result = names.GetValueOrDefault(output, output);
        model.Graph.Output.Remove(model.Graph.Output.Single(o => o.Name == output));
        var score = classification
            ? onnx.Node("Softmax", $"{scoreColumn}.softmax", new[] { result }, new Dictionary<string, object> { ["axis"] = 1L })
            : result;
        onnx.Output(scoreColumn, score, ElementType.Float, outputs);
        if (classification)
            onnx.Output(QdqExporter.PredictedIndexColumn, onnx.Node("ArgMax", "argmax", new[] { result },
                new Dictionary<string, object> { ["axis"] = 1L, ["keepdims"] = 0L }), ElementType.Int64);

        var report = new QuantizationReport(QuantizationReport.CurrentFormatVersion, network.AlgorithmName, annotations.Report);
        model.MetadataProps.Add(new StringStringEntryProto { Key = QuantizationReport.MetadataKey, Value = report.ToJson() });
        model.ProducerName = "MLNetQuant";
        model.ProducerVersion = typeof(TrainedGraphExporter).Assembly.GetName().Version?.ToString() ?? "0";
        return new ExportedModel(Google.Protobuf.MessageExtensions.ToByteArray(model), report)
        {
            InputColumns = inputs.Bindings.Select(b => b.Column).ToArray(),
            InputShapes = inputs.IsFlat ? null : InputBinding.MlNetShapes(graph.Source, inputs.Bindings),
        };
    }

    // The features column is a flat vector per row: reshape it to the model's input, first of all nodes.
    private static void ReadFlatFeatures(ModelProto model, OnnxGraphBuilder onnx, string input, InputBinding features, Dictionary<string, string> names)
    {
        var (featureColumn, inputShape) = (features.Column, features.RowDims);
        if (featureColumn != input && onnx.IsTaken(featureColumn))
            throw new NotSupportedException($"The model already has a tensor named '{featureColumn}', the features column; use another FeatureColumnName.");
        model.Graph.Input.Remove(model.Graph.Input.Single(i => i.Name == input));
        onnx.Input(featureColumn, inputShape.Aggregate(1L, (a, b) => a * b));
        var shape = onnx.Initializer($"{featureColumn}.shape", new[] { -1L }.Concat(inputShape).ToArray(), inputShape.Length + 1);
        var reshaped = onnx.Node("Reshape", $"{featureColumn}.reshape", new[] { featureColumn, shape });
        var reshape = model.Graph.Node[^1];
        model.Graph.Node.RemoveAt(model.Graph.Node.Count - 1);
        model.Graph.Node.Insert(0, reshape);
        names[input] = reshaped;
    }

    // Each quantized node's grids, as the evaluation-mode forward pass uses them.
    private static QdqAnnotations Annotate(QuantizedNetwork network, OnnxGraphModule graph)
    {
        var annotations = new QdqAnnotations();
        var nodes = graph.Nodes.ToDictionary(n => n.GetName(), StringComparer.Ordinal);
        foreach (var layer in network.Layers)
        {
            var node = nodes[layer.Name];
            var name = node.Node.Name;
            if (layer.Get(QuantType.Input) is { } inputQuantizer)
            {
                annotations.Inputs[(name, 0)] = LayerGrid.Read(layer, QuantType.Input, inputQuantizer, annotations.Report);
            }
            if (layer.Get(QuantType.Weight) is { } weightQuantizer)
            {
                using var quantized = weightQuantizer.Quantize(node.Weight, Evaluation);
                var grid = LayerGrid.Read(layer, QuantType.Weight, weightQuantizer, annotations.Report);
                var axis = node.WeightChannelAxis;
                var (ints, scales, zeroPoints, signed) = WeightGrid.Integers(layer.Name, quantized, grid, axis);
                annotations.Weights[name] = new QuantizedWeight(ints, scales, zeroPoints, signed, quantized.shape, axis);
            }
            if (layer.Get(QuantType.Output) is { } outputQuantizer)
            {
                var grid = LayerGrid.Read(layer, QuantType.Output, outputQuantizer, annotations.Report);
                if (outputQuantizer is BinaryActivationQuantizer) annotations.Binarized.Add(node.Node.Output[0]);
                else annotations.Tensors[node.Node.Output[0]] = grid;
            }
        }
        return annotations;
    }
}
