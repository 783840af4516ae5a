//! How much of each image's size it shares with other images, as Docker's
//! `system df -v` shows it (SHARED SIZE, UNIQUE SIZE): a layer directory
//! two images stand on — a composed image and its parents, images built
//! FROM one base — is counted in each image's shared size and only once in
//! the store's total. It only reads the store.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_store::Digest;

use crate::Engine;

/// One image's bytes: all its layers, those another image also uses, and
/// the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageLayerUsage {
    /// Bytes of all its layers.
    pub size: u64,
    /// Bytes of its layers another image also uses.
    pub shared: u64,
    /// Bytes of its layers no other image uses.
    pub unique: u64,
}

impl Engine {
    /// Per image of `ids` (those `images` lists: a build's intermediate
    /// step images would share every layer with the image they led to):
    /// its size split into bytes another of them also uses, and the rest.
    pub fn image_layer_usage(&self, ids: &[Digest]) -> Result<BTreeMap<Digest, ImageLayerUsage>> {
        let wanted: std::collections::HashSet<&Digest> = ids.iter().collect();
        let images: Vec<_> = self
            .store
            .list_images()?
            .into_iter()
            .filter(|i| wanted.contains(&i.id))
            .collect();
        let sizes: BTreeMap<Digest, u64> = self
            .store
            .list_layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.content_size))
            .collect();
        let mut users: BTreeMap<&Digest, usize> = BTreeMap::new();
        for img in &images {
            let mut own: Vec<&Digest> = img.layers.iter().collect();
            own.dedup();
            for l in own {
                *users.entry(l).or_default() += 1;
            }
        }
        Ok(images
            .iter()
            .map(|img| {
                let mut u = ImageLayerUsage::default();
                for l in &img.layers {
                    let n = sizes.get(l).copied().unwrap_or(0);
                    u.size += n;
                    if users.get(l).copied().unwrap_or(0) > 1 {
                        u.shared += n;
                    } else {
                        u.unique += n;
                    }
                }
                (img.id.clone(), u)
            })
            .collect())
    }
}
