using Onnx;

namespace MLNetQuant.Graph;

/// <summary>What <see cref="OnnxImporter.Import"/> did to a model.</summary>
/// <param name="SourceOpset">The default-domain opset the file imported.</param>
/// <param name="Opset">The opset of the imported graph (13 for older models, the model's own otherwise).</param>
/// <param name="RewrittenNodes">Nodes rewritten to carry them to <paramref name="Opset"/>.</param>
/// <param name="FoldedBatchNorms">BatchNormalization nodes folded into the Conv/ConvTranspose/Gemm before them.</param>
internal sealed record ImportSummary(int SourceOpset, int Opset, int RewrittenNodes, int FoldedBatchNorms);

/// <summary>Brings any float model of the standard ONNX domain (opsets 7–21) into the one form the quantizer works on:
/// named nodes, constants as initializers, no Identity or Dropout, opset 13 or later, BatchNormalization folded,
/// Resize and Pad over all axes (see <see cref="AxesExpansion"/>), a
/// symbolic batch dimension on every input and output (other symbolic dimensions kept), no stale value_info.</summary>
internal static class OnnxImporter
{
    /// <summary>Imports <paramref name="model"/> in place.</summary>
    /// <param name="model">The parsed model.</param>
    /// <param name="source">How errors name the model (its option or path).</param>
    /// <exception cref="NotSupportedException">An opset outside 7–21, control flow, or an op the opset upgrade does not
    /// know — named with its node, op type and opset.</exception>
    public static ImportSummary Import(ModelProto model, string source)
    {
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new NotSupportedException($"{source}: the model has no graph nodes.");
        var sourceOpset = OpsetUpgrade.OpsetOf(model);
        var graph = new GraphEditor(model);
        GraphCleanup.RefuseSubgraphs(model.Graph, source, sourceOpset);
        GraphCleanup.Apply(graph, source);
        var rewritten = OpsetUpgrade.Apply(graph, source);
        var folded = BatchNormFolding.Apply(graph);
        AxesExpansion.Apply(graph, source);
        MakeBatchSymbolic(model);
        return new ImportSummary(sourceOpset, OpsetUpgrade.OpsetOf(model), rewritten, folded);
    }

    /// <summary>Makes the first dimension of every graph input and output symbolic (exporters such as CNTK fix it at
    /// 1, which would forbid batched calibration), keeps the other dimensions, and drops value_info that could
    /// contradict the new batch size.</summary>
    public static void MakeBatchSymbolic(ModelProto model)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var value in model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Concat(model.Graph.Output))
        {
            var dims = value.Type?.TensorType?.Shape?.Dim;
            if (dims is { Count: > 0 } && dims[0].DimParam.Length == 0)
                dims[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
        }
        model.Graph.ValueInfo.Clear();
    }
}
