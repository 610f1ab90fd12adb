"""Construction-time rules of a Net that need its wiring: parameter sharing and the
backward-need inference (reference §3.6, §3.7)."""
from .errors import layer_error


class NetBuildMixin:
    def _append_param(self, layer_id, param_id):
        from .proto import caffe_pb2
        lp = self._layer_params[layer_id]
        layer = self.layers[layer_id]
        spec = lp.param[param_id] if param_id < len(lp.param) else caffe_pb2.ParamSpec()
        name = spec.name
        self._param_display_names.append(name or str(param_id))
        net_param_id = len(self._params)
        self._param_id_vecs[layer_id].append(net_param_id)
        self._params.append(layer.blobs[param_id])
        self._param_layer_indices.append((layer_id, param_id))
        if not name or name not in self._param_names_index:
            self._param_owners.append(-1)
            if name:
                self._param_names_index[name] = net_param_id
            self._learnable_param_ids.append(len(self.learnable_params))
            self._learnable_param_owner_index.append(net_param_id)
            self.learnable_params.append(layer.blobs[param_id])
            self._has_lr.append(spec.HasField("lr_mult"))
            self._has_decay.append(spec.HasField("decay_mult"))
            self.params_lr.append(spec.lr_mult)
            self.params_weight_decay.append(spec.decay_mult)
            return
        owner_id = self._param_names_index[name]
        self._param_owners.append(owner_id)
        owner_layer, owner_param = self._param_layer_indices[owner_id]
        this_blob = layer.blobs[param_id]
        owner_blob = self.layers[owner_layer].blobs[owner_param]
        if spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE:
            if this_blob.count != owner_blob.count:
                raise layer_error(lp, f"cannot share param '{name}' owned by layer "
                                      f"'{self._layer_names[owner_layer]}' with shape "
                                      f"{owner_blob.shape}: counts differ ({this_blob.shape})")
        elif this_blob.shape != owner_blob.shape:
            raise layer_error(lp, f"cannot share param '{name}' owned by layer "
                                  f"'{self._layer_names[owner_layer]}': shape "
                                  f"{owner_blob.shape} differs from {this_blob.shape} "
                                  f"(set share_mode: PERMISSIVE to compare counts only)")
        lid = self._learnable_param_ids[owner_id]
        self._learnable_param_ids.append(lid)
        this_blob.share_data(owner_blob)
        this_blob.share_diff(owner_blob)
        for has, values, field, has_field in ((self._has_lr, self.params_lr, "lr_mult",
                                               spec.HasField("lr_mult")),
                                              (self._has_decay, self.params_weight_decay,
                                               "decay_mult", spec.HasField("decay_mult"))):
            if not has_field:
                continue
            value = getattr(spec, field)
            if has[lid]:
                if value != values[lid]:
                    raise layer_error(lp, f"shared param '{name}' has mismatched {field} "
                                          f"({value} here, {values[lid]} at its owner)")
            else:
                has[lid] = True
                values[lid] = value

    def _infer_backward(self, force_backward):
        under_loss, skip = set(), set()
        for layer_id in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[layer_id]
            contributes, skip_down = False, True
            for j, idx in enumerate(self._top_id_vecs[layer_id]):
                name = self._blob_names[idx]
                if layer.loss(j) or name in under_loss:
                    contributes = True
                if name not in skip:
                    skip_down = False
                if contributes and not skip_down:
                    break
            if self._layer_need_backward[layer_id] and skip_down:
                self._layer_need_backward[layer_id] = False
                self._bottom_need_backward[layer_id] = [False] * len(self._bottom_id_vecs[layer_id])
            if not contributes:
                self._layer_need_backward[layer_id] = False
            for j, idx in enumerate(self._bottom_id_vecs[layer_id]):
                name = self._blob_names[idx]
                if contributes:
                    under_loss.add(name)
                else:
                    self._bottom_need_backward[layer_id][j] = False
                if not self._bottom_need_backward[layer_id][j]:
                    skip.add(name)
        if force_backward:
            for layer_id, layer in enumerate(self.layers):
                self._layer_need_backward[layer_id] = True
                for j, idx in enumerate(self._bottom_id_vecs[layer_id]):
                    need = self._bottom_need_backward[layer_id][j] or \
                        layer.allow_force_backward(j)
                    self._bottom_need_backward[layer_id][j] = need
                    self._blob_need_backward[idx] = self._blob_need_backward[idx] or need
                layer.param_propagate_down = [True] * len(layer.blobs)
